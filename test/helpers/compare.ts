/**
 * Comparisons against float64 references, with a tolerance chosen per dtype:
 * |got - want| <= atol + rtol * |want| elementwise (llm.c's tol + |ref|·eps).
 */
import type { DType } from '../../lib/tensor';

export const tolerance: Record<DType, { atol: number; rtol: number }> = {
  f64: { atol: 1e-10, rtol: 1e-9 },
  f32: { atol: 1e-5, rtol: 1e-4 },
  bf16: { atol: 2e-2, rtol: 2e-2 },
  f16: { atol: 2e-3, rtol: 5e-3 },
  i32: { atol: 0, rtol: 0 },
};

export interface Mismatch {
  index: number;
  got: number;
  want: number;
  count: number;
  maxAbsError: number;
}

/** The first element outside tolerance (with how many are), or null when all match. */
export function mismatch(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: { atol: number; rtol: number },
): Mismatch | null {
  if (got.length !== want.length) return { index: -1, got: got.length, want: want.length, count: -1, maxAbsError: Infinity };
  let first = -1;
  let count = 0;
  let maxAbsError = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const ok = err <= tol.atol + tol.rtol * Math.abs(want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i]));
    if (!(err <= maxAbsError)) maxAbsError = err;
    if (!ok) {
      if (first < 0) first = i;
      count++;
    }
  }
  return first < 0 ? null : { index: first, got: got[first], want: want[first], count, maxAbsError };
}

/** Asserts closeness with a readable message (tap's t.ok with the first mismatch). */
export function assertClose(
  t: { ok(value: unknown, message: string): unknown },
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: { atol: number; rtol: number },
  what: string,
): void {
  const bad = mismatch(got, want, tol);
  t.ok(
    bad === null,
    bad === null
      ? `${what}: ${want.length} values within atol ${tol.atol}, rtol ${tol.rtol}`
      : bad.index < 0
        ? `${what}: length ${bad.got} != ${bad.want}`
        : `${what}: ${bad.count} values off, first at ${bad.index}: got ${bad.got}, want ${bad.want} (max abs error ${bad.maxAbsError})`,
  );
}
