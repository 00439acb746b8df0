/**
 * Finite-difference gradient checks in float64. For an op f with inputs xs, we take a random
 * projection w of its outputs, L(xs) = Σ w·f(xs), and compare each analytic dL/dx against the
 * central difference (L(x+h) - L(x-h)) / 2h on a sample of coordinates.
 */
import type { HostRng } from '../../lib/rng';

export interface GradCheckResult {
  checked: number;
  worst: { input: string; index: number; analytic: number; numeric: number; error: number };
}

/**
 * loss(inputs) must be a pure function of the host arrays (it creates f64 tensors, runs the op,
 * reads back and projects); analytic holds dL/dinput for each named input.
 */
export async function gradCheck(
  inputs: Record<string, Float64Array>,
  analytic: Record<string, ArrayLike<number>>,
  loss: (inputs: Record<string, Float64Array>) => Promise<number>,
  rng: HostRng,
  options: { samples?: number; h?: number } = {},
): Promise<GradCheckResult> {
  const samples = options.samples ?? 12;
  const h = options.h ?? 1e-6;
  let worst = { input: '', index: -1, analytic: 0, numeric: 0, error: 0 };
  let checked = 0;
  for (const name of Object.keys(analytic)) {
    const x = inputs[name];
    const count = Math.min(samples, x.length);
    for (let s = 0; s < count; s++) {
      const index = count === x.length ? s : rng.int(x.length);
      const original = x[index];
      x[index] = original + h;
      const plus = await loss(inputs);
      x[index] = original - h;
      const minus = await loss(inputs);
      x[index] = original;
      const numeric = (plus - minus) / (2 * h);
      const a = analytic[name][index];
      const error = Math.abs(a - numeric) / Math.max(1, Math.abs(numeric));
      checked++;
      if (error > worst.error || worst.index < 0) worst = { input: name, index, analytic: a, numeric, error };
    }
  }
  return { checked, worst };
}

export function project(values: ArrayLike<number>, weights: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i] * weights[i];
  return total;
}
