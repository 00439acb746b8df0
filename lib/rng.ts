/**
 * The random-number state seqtune threads through initialisation, dropout and data shuffling.
 * Draws come from a counter-based generator (Philox-4x32-10, kernels/common/philox.h): draw
 * number `offset` under `seed` is a pure function of the two, identical on CPU and GPU, so saving
 * `{seed, offset}` in a checkpoint and restoring it continues the exact stream.
 */
import { SeqtuneError } from './errors';

export interface RngState {
  seed: number;
  offset: number;
}

export class Rng {
  private seedValue: number;
  private offsetValue: number;

  constructor(seed: number, offset = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new SeqtuneError(`seed must be a non-negative integer, got ${seed}`, 'ERR_ARGUMENT');
    this.seedValue = seed;
    this.offsetValue = offset;
  }

  /** Reserves the next draw: the op given it uses element indices 0..n-1 of that draw. */
  next(): RngState {
    const draw = { seed: this.seedValue, offset: this.offsetValue };
    this.offsetValue += 1;
    return draw;
  }

  state(): RngState {
    return { seed: this.seedValue, offset: this.offsetValue };
  }

  static from(state: RngState): Rng {
    return new Rng(state.seed, state.offset);
  }
}

/**
 * A small deterministic generator for host-side choices (shuffles, sampling), seeded the same way.
 * splitmix32 over a counter: fast, and its state is one integer.
 */
export class HostRng {
  constructor(private counter: number) {}

  /** Uniform in [0, 1). */
  uniform(): number {
    let z = (this.counter = (this.counter + 0x9e3779b9) >>> 0);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  state(): number {
    return this.counter;
  }
}
