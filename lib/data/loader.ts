/**
 * Batches from a tokenized dataset under a token budget, reshuffled every epoch, with a small JSON
 * state that resumes mid-epoch exactly.
 *
 * An epoch's plan is a pure function of (seed, epoch, example lengths): the examples are shuffled,
 * cut into windows, each window is grouped into batches, and the batches are shuffled. So the state
 * only needs the epoch and how many of its batches were delivered; restoring rebuilds the plan.
 * Grouping within a window:
 * - 'pack' (default): first-fit decreasing, several examples per row of at most `tokenBudget`
 *   tokens (packing with document boundaries, little waste);
 * - 'bucket': examples of similar length together, as many as keep count × longest ≤ `tokenBudget`
 *   (what a padded [B, longest] batch would cost), for even step times.
 */
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { Batch, buildBatch } from './batch';
import { mix32 } from './mixing';
import { TokenizedDataset } from './tokenize';

export interface LoaderOptions {
  /** most tokens in one batch */
  tokenBudget: number;
  mode?: 'pack' | 'bucket';
  seed?: number;
  /** examples grouped together before batches are shuffled (default 1024) */
  window?: number;
  /** pad every batch to tokenBudget tokens (fixed shapes) */
  padToBudget?: boolean;
  /**
   * Examples per optimizer step: the epoch's shuffled examples are cut into steps of exactly this
   * many (the last may hold fewer), and each step's examples are grouped into micro-batches of at
   * most tokenBudget tokens, so packing never changes how many examples a step holds.
   */
  stepExamples?: number;
  padId?: number;
}

/** Everything needed to resume: JSON-serialisable. */
export interface LoaderState {
  epoch: number;
  /** batches of this epoch already delivered */
  batch: number;
  seed: number;
  /** checks the state is restored onto the same data */
  examples: number;
  tokens: number;
}

function shuffleInPlace<T>(a: { length: number; [i: number]: T }, rng: HostRng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/** One window's examples (longest first) grouped into batches by the loader's mode. */
function group(chunk: number[], lengths: Int32Array, options: LoaderOptions): number[][] {
  const budget = options.tokenBudget;
  if (options.mode === 'bucket') {
    const batches: number[][] = [];
    let current: number[] = [];
    let longest = 0;
    for (const i of chunk) {
      if (current.length > 0 && (current.length + 1) * longest > budget) {
        batches.push(current);
        current = [];
      }
      if (current.length === 0) longest = lengths[i];
      current.push(i);
    }
    if (current.length > 0) batches.push(current);
    return batches;
  }
  const bins: number[][] = [];
  const free: number[] = [];
  for (const i of chunk) {
    let b = 0;
    while (b < bins.length && free[b] < lengths[i]) b++;
    if (b === bins.length) {
      bins.push([]);
      free.push(budget);
    }
    bins[b].push(i);
    free[b] -= lengths[i];
  }
  return bins;
}

/**
 * One epoch as optimizer steps, each a list of batches (lists of example indices): with
 * stepExamples, steps of that many examples; otherwise every batch on its own (the trainer then
 * takes gradAccum of them per step).
 */
export function planEpochSteps(lengths: Int32Array, options: LoaderOptions, epoch: number): number[][][] {
  const rng = new HostRng(mix32(options.seed ?? 0, epoch));
  const n = lengths.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  shuffleInPlace(order, rng);
  // longest first; ties keep the shuffled order, so the plan stays a function of the seed
  const window = (start: number, size: number) => Array.from(order.subarray(start, Math.min(n, start + size))).sort((a, b) => lengths[b] - lengths[a]);
  if (options.stepExamples !== undefined) {
    const steps: number[][][] = [];
    for (let start = 0; start < n; start += options.stepExamples) steps.push(group(window(start, options.stepExamples), lengths, options));
    return steps;
  }
  const size = options.window ?? 1024;
  const batches: number[][] = [];
  for (let start = 0; start < n; start += size) batches.push(...group(window(start, size), lengths, options));
  shuffleInPlace(batches, rng);
  return batches.map((b) => [b]);
}

/** The batches (lists of example indices) of one epoch, in order. */
export function planEpoch(lengths: Int32Array, options: LoaderOptions, epoch: number): number[][] {
  return planEpochSteps(lengths, options, epoch).flat();
}

export class BatchLoader {
  private readonly lengths: Int32Array;
  private readonly totalTokens: number;
  private epochValue: number;
  private delivered: number;
  private plan: number[][] = [];
  /** batches delivered when each step of the epoch ends (stepExamples) */
  private stepEnds: Set<number> = new Set();

  constructor(
    private readonly dataset: TokenizedDataset,
    private readonly options: LoaderOptions,
    state?: LoaderState,
  ) {
    if (!(Number.isInteger(options.tokenBudget) && options.tokenBudget > 0)) throw new SeqtuneError(`tokenBudget must be a positive integer, got ${options.tokenBudget}`, 'ERR_ARGUMENT');
    if (options.window !== undefined && !(Number.isInteger(options.window) && options.window > 0)) throw new SeqtuneError(`window must be a positive integer, got ${options.window}`, 'ERR_ARGUMENT');
    if (options.stepExamples !== undefined && !(Number.isInteger(options.stepExamples) && options.stepExamples > 0)) {
      throw new SeqtuneError(`stepExamples must be a positive integer, got ${options.stepExamples}`, 'ERR_ARGUMENT');
    }
    if (dataset.size === 0) throw new SeqtuneError('the dataset has no examples', 'ERR_DATA');
    this.lengths = new Int32Array(dataset.size);
    for (let i = 0; i < dataset.size; i++) {
      this.lengths[i] = dataset.length(i);
      if (this.lengths[i] > options.tokenBudget) {
        throw new SeqtuneError(`example ${i} has ${this.lengths[i]} tokens, over the token budget ${options.tokenBudget}: tokenize with maxLength <= tokenBudget`, 'ERR_CONFIG');
      }
    }
    this.totalTokens = dataset.tokens.length;
    const seed = options.seed ?? 0;
    if (state) {
      if (state.seed !== seed || state.examples !== dataset.size || state.tokens !== this.totalTokens) {
        throw new SeqtuneError(
          `loader state is for seed ${state.seed}, ${state.examples} examples, ${state.tokens} tokens; this loader has seed ${seed}, ${dataset.size} examples, ${this.totalTokens} tokens`,
          'ERR_CONFIG',
        );
      }
    }
    this.epochValue = state?.epoch ?? 0;
    this.replan();
    this.delivered = state?.batch ?? 0;
    if (!(Number.isInteger(this.delivered) && this.delivered >= 0 && this.delivered <= this.plan.length)) {
      throw new SeqtuneError(`loader state batch ${state?.batch} is outside epoch ${this.epochValue}'s ${this.plan.length} batches`, 'ERR_CONFIG');
    }
  }

  get epoch(): number {
    return this.epochValue;
  }

  /** batches in the current epoch */
  get batchesInEpoch(): number {
    return this.plan.length;
  }

  /** optimizer steps in the current epoch (stepExamples; otherwise one per batch) */
  get stepsInEpoch(): number {
    return this.options.stepExamples !== undefined ? this.stepEnds.size : this.plan.length;
  }

  state(): LoaderState {
    return { epoch: this.epochValue, batch: this.delivered, seed: this.options.seed ?? 0, examples: this.dataset.size, tokens: this.totalTokens };
  }

  /** The next batch; after an epoch's last batch the next epoch (a new shuffle) begins. */
  next(): Batch {
    this.rollIfDone();
    const indices = this.plan[this.delivered++];
    return buildBatch(this.dataset, indices, { padTo: this.options.padToBudget ? this.options.tokenBudget : undefined, padId: this.options.padId });
  }

  /** The batches of the next optimizer step (stepExamples: that many examples between them). */
  nextStep(): Batch[] {
    if (this.options.stepExamples === undefined) throw new SeqtuneError('nextStep needs stepExamples', 'ERR_ARGUMENT');
    const batches = [this.next()];
    while (!this.stepEnds.has(this.delivered)) batches.push(this.next());
    return batches;
  }

  /**
   * The remaining batches of the current epoch, or all of the next one when the current epoch is
   * finished: `for (let e = 0; e < epochs; e++) for (const b of loader.epochBatches()) ...`.
   */
  *epochBatches(): Generator<Batch> {
    this.rollIfDone();
    while (this.delivered < this.plan.length) yield this.next();
  }

  private rollIfDone(): void {
    if (this.delivered < this.plan.length) return;
    this.epochValue++;
    this.replan();
    this.delivered = 0;
  }

  private replan(): void {
    const steps = planEpochSteps(this.lengths, this.options, this.epochValue);
    this.plan = steps.flat();
    this.stepEnds = new Set();
    let end = 0;
    for (const step of steps) this.stepEnds.add((end += step.length));
  }
}
