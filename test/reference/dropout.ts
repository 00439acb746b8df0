/**
 * Reference dropout mask: Philox-4x32-10 (Salmon et al. 2011) written from the paper's round
 * function, keyed by the seed with counter (index, offset), first word mapped to a uniform in
 * (0, 1] through its top 24 bits; element i is kept when that uniform exceeds p (as f32).
 */

const M0 = 0xd2511f53n;
const M1 = 0xcd9e8d57n;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const MASK = 0xffffffffn;

const lo32 = (v: number) => v >>> 0;
const hi32 = (v: number) => Math.floor(v / 2 ** 32) >>> 0;

/** The four output words for a 128-bit counter and 64-bit key, each given as two 32-bit halves. */
export function philox4x32(counter: [number, number, number, number], key: [number, number]): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map(BigInt);
  let [k0, k1] = key;
  for (let round = 0; round < 10; round++) {
    const p0 = M0 * c0;
    const p1 = M1 * c2;
    [c0, c1, c2, c3] = [
      (p1 >> 32n) ^ c1 ^ BigInt(k0),
      p1 & MASK,
      (p0 >> 32n) ^ c3 ^ BigInt(k1),
      p0 & MASK,
    ];
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [Number(c0), Number(c1), Number(c2), Number(c3)];
}

export function dropoutUniform(seed: number, offset: number, index: number): number {
  const [word] = philox4x32([lo32(index), hi32(index), lo32(offset), hi32(offset)], [lo32(seed), hi32(seed)]);
  return ((word >>> 8) + 1) / 2 ** 24;
}

export function dropoutMaskRef(n: number, p: number, seed: number, offset: number): boolean[] {
  const threshold = Math.fround(p);
  return Array.from({ length: n }, (_, i) => dropoutUniform(seed, offset, i) > threshold);
}

export function dropoutRef(x: ArrayLike<number>, p: number, seed: number, offset: number): Float64Array {
  const keep = dropoutMaskRef(x.length, p, seed, offset);
  return Float64Array.from(x, (v, i) => (keep[i] ? v / (1 - p) : 0));
}
