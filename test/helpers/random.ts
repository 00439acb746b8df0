/**
 * Fresh random inputs for every run: the seed comes from SEQTUNE_TEST_SEED or the clock, and is
 * printed with each failure (via t.comment) so a failing draw can be replayed.
 */
import { HostRng } from '../../lib/rng';

export function testSeed(): number {
  const fixed = process.env.SEQTUNE_TEST_SEED;
  return fixed ? Number(fixed) : (Date.now() ^ (process.pid << 8)) >>> 0;
}

export function hostRng(seed: number): HostRng {
  return new HostRng(seed);
}

export function randomArray(rng: HostRng, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

export function randomInts(rng: HostRng, n: number, low: number, high: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = low + rng.int(high - low);
  return out;
}
