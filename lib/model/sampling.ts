/**
 * Choosing the next token from one row of logits, on the host: repetition penalty (as in
 * transformers: divide positive logits, multiply negative ones), temperature, top-k, top-p, then
 * a draw — or the argmax when temperature is 0 (greedy, the default). -1 when the row holds a NaN
 * (the caller names the failure: a draw from NaN scores would be an arbitrary token).
 */
import { HostRng } from '../rng';

export interface SamplingOptions {
  /** 0 = greedy */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** > 1 discourages tokens already in the sequence */
  repetitionPenalty?: number;
}

export function sampleToken(
  logits: Float32Array | Float64Array,
  history: readonly number[],
  options: SamplingOptions,
  rng: HostRng,
): number {
  const scores = Float64Array.from(logits);
  const penalty = options.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(history)) {
      if (id >= 0 && id < scores.length) scores[id] = scores[id] > 0 ? scores[id] / penalty : scores[id] * penalty;
    }
  }
  const temperature = options.temperature ?? 0;
  if (temperature <= 0) {
    // The NaN test rides on the argmax's own pass: scanning the row again cost more than the
    // whole decode step at batch 32 (vocabulary 128256).
    let best = 0;
    let nan = Number.isNaN(scores[0]);
    for (let i = 1; i < scores.length; i++) {
      const s = scores[i];
      if (s > scores[best]) best = i;
      else if (s !== s) nan = true;
    }
    return nan ? -1 : best;
  }
  for (let i = 0; i < scores.length; i++) if (Number.isNaN(scores[i])) return -1;
  let order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]);
  if (options.topK && options.topK > 0) order = order.slice(0, options.topK);
  const max = scores[order[0]];
  let probs = order.map((i) => Math.exp((scores[i] - max) / temperature));
  const total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);
  if (options.topP !== undefined && options.topP < 1) {
    // Keep the smallest prefix whose mass reaches topP (always at least one token).
    let mass = 0;
    let keep = 0;
    while (keep < probs.length && (keep === 0 || mass < options.topP)) mass += probs[keep++];
    order = order.slice(0, keep);
    probs = probs.slice(0, keep).map((p) => p / mass);
  }
  let u = rng.uniform();
  for (let i = 0; i < order.length; i++) {
    u -= probs[i];
    if (u < 0) return order[i];
  }
  return order[order.length - 1];
}
