/**
 * Which records get which augmentation: a plan over record positions, deterministic for a seed.
 *
 * Each strategy has a target: `count`, or `fraction` × the number of records it can apply to
 * (default fraction 1). Positions are visited in one seeded random order and each goes to the
 * eligible strategy that is furthest below its target, so strategies that share records split them
 * evenly and never overlap (as the paper's mixes use disjoint indices). Translate strategies cycle
 * their records over the languages, giving equal counts per language (the paper's 4 × 4,750).
 *
 * `mode`: 'replace' puts each augmented record in place of its original (SeqIns: the size stays
 * the same); 'add' keeps every original and adds the augmented record after it (v1 commit).
 */
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';

export type MixMode = 'add' | 'replace';

export interface MixOptions {
  fraction?: number;
  count?: number;
  mode?: MixMode;
  seed?: number;
  languages?: readonly string[];
}

export interface MixPlan {
  /** per position: the index of its strategy, or -1 */
  strategy: Int16Array;
  /** per position: the index of its language in `languages` (meaningful for translate strategies) */
  language: Uint8Array;
  /** per strategy: how many records it can apply to, and how many it got */
  eligible: number[];
  assigned: number[];
}

/** Mixes two integers into a well-spread 32-bit seed (for per-record and per-epoch generators). */
export function mix32(a: number, b: number): number {
  let h = Math.imul((a >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (b >>> 0) ^ (h >>> 15), 0xc2b2ae35) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export function validateMix(options: MixOptions): void {
  const { fraction, count } = options;
  if (fraction !== undefined && !(fraction >= 0 && fraction <= 1)) throw new SeqtuneError(`fraction must be in [0, 1], got ${fraction}`, 'ERR_ARGUMENT');
  if (count !== undefined && !(Number.isInteger(count) && count >= 0)) throw new SeqtuneError(`count must be a non-negative integer, got ${count}`, 'ERR_ARGUMENT');
  if (fraction !== undefined && count !== undefined) throw new SeqtuneError('give a fraction or a count, not both', 'ERR_ARGUMENT');
  if (options.mode !== undefined && options.mode !== 'add' && options.mode !== 'replace') throw new SeqtuneError(`mode must be add or replace, got '${options.mode}'`, 'ERR_ARGUMENT');
  if (options.languages && options.languages.length > 255) throw new SeqtuneError('at most 255 languages', 'ERR_ARGUMENT');
}

/**
 * The plan for `n` records and `strategies` strategies; `eligible(s, i)` tells whether strategy s
 * can apply to record i, `multilingual[s]` whether s cycles over languages.
 */
export function planMix(n: number, strategies: number, eligible: (s: number, i: number) => boolean, options: MixOptions, multilingual: readonly boolean[] = []): MixPlan {
  validateMix(options);
  const plan: MixPlan = {
    strategy: new Int16Array(n).fill(-1),
    language: new Uint8Array(n),
    eligible: new Array<number>(strategies).fill(0),
    assigned: new Array<number>(strategies).fill(0),
  };
  for (let i = 0; i < n; i++) for (let s = 0; s < strategies; s++) if (eligible(s, i)) plan.eligible[s]++;
  const target = plan.eligible.map((e) => Math.min(e, options.count ?? Math.round((options.fraction ?? 1) * e)));
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = new HostRng(options.seed ?? 0);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const languages = options.languages?.length ?? 0;
  for (const i of order) {
    let best = -1;
    let bestFill = Infinity;
    for (let s = 0; s < strategies; s++) {
      if (plan.assigned[s] >= target[s] || !eligible(s, i)) continue;
      const fill = plan.assigned[s] / target[s];
      if (fill < bestFill) {
        best = s;
        bestFill = fill;
      }
    }
    if (best < 0) continue;
    plan.strategy[i] = best;
    if (multilingual[best] && languages > 0) plan.language[i] = plan.assigned[best] % languages;
    plan.assigned[best]++;
  }
  return plan;
}
