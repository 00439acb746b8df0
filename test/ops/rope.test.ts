import t from 'tap';
import { rope, ropeBackward, RopeOptions } from '../../lib/ops';
import { DType, tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { gradCheck, project } from '../helpers/gradcheck';
import { hostRng, randomArray, randomInts, testSeed } from '../helpers/random';
import { ropeInvFreq, ropeRef } from '../reference/rope';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const read = async (x: { toArray(): Promise<ArrayLike<number>> }) => Float64Array.from(await x.toArray());

// Llama-3.1's rope_scaling and rope_theta.
const llama31: RopeOptions = {
  theta: 500000,
  scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
};
const variants: Array<[string, RopeOptions]> = [
  ['none', { theta: 10000 }],
  ['linear', { theta: 10000, scaling: { type: 'linear', factor: 2.5 } }],
  ['llama3', llama31],
];

for (const [tokens, heads, dim] of [[1, 1, 2], [3, 3, 6], [17, 2, 34], [65, 1, 64], [129, 3, 128]]) {
  for (const dtype of ['f32', 'f64', 'bf16'] as DType[]) {
    t.test(`rope ${dtype} [${tokens},${heads},${dim}]`, async (t) => {
      const n = tokens * heads * dim;
      const shape = [tokens, heads, dim];
      const positions = randomInts(rng, tokens, 0, 4096);
      const tpos = tensor(positions, [tokens]);
      const tx = tensor(randomArray(rng, n), shape, { dtype });
      const tdy = tensor(randomArray(rng, n), shape, { dtype });
      const [x, dy] = await Promise.all([tx, tdy].map(read));
      const tol = tolerance[dtype];
      for (const [name, options] of variants) {
        const y = rope(tx, tpos, options);
        t.equal(y.dtype, dtype);
        assertClose(t, await y.toArray(), ropeRef(x, positions, heads, dim, options), tol, `${name} forward`);
        const dx = ropeBackward(tdy, tpos, options);
        assertClose(t, await dx.toArray(), ropeRef(dy, positions, heads, dim, options, true), tol, `${name} backward`);
        // a rotation's inverse undoes it (exactly up to rounding in f32/f64)
        if (dtype !== 'bf16') assertClose(t, await ropeBackward(y, tpos, options).toArray(), x, tol, `${name} inverse ∘ forward`);
      }
    });
  }
}

t.test('llama3 scaling with the Llama-3.1 constants at long positions', async (t) => {
  const [tokens, heads, dim] = [33, 2, 128];
  const invFreq = ropeInvFreq(dim, { theta: llama31.theta });
  const wavelen = Array.from(invFreq, (f) => (2 * Math.PI) / f);
  // the case covers all three bands: kept (< 8192/4), interpolated, and slowed (> 8192/1)
  t.ok(wavelen.some((w) => w < 2048) && wavelen.some((w) => w >= 2048 && w <= 8192) && wavelen.some((w) => w > 8192), 'all three bands');
  const positions = randomInts(rng, tokens, 0, 131072);
  positions[0] = 0;
  positions[1] = 131071;
  const x = randomArray(rng, tokens * heads * dim);
  const tx = tensor(x, [tokens, heads, dim]);
  const tpos = tensor(positions, [tokens]);
  const got = await read(rope(tx, tpos, llama31));
  // angles reach ~1.3e5 rad, so allow for the last-ulp differences of pow/sin between libms
  assertClose(t, got, ropeRef(x, positions, heads, dim, llama31), { atol: 1e-9, rtol: 1e-9 }, 'f64 llama3 forward');
  const plain = await rope(tx, tpos, { theta: llama31.theta }).toArray();
  const maxDiff = got.reduce((m, v, i) => Math.max(m, Math.abs(v - plain[i])), 0);
  t.ok(maxDiff > 0.1, `scaling changes the result (max difference ${maxDiff} from unscaled)`);
  const f32 = await rope(tensor(x, [tokens, heads, dim], { dtype: 'f32' }), tpos, llama31).toArray();
  assertClose(t, f32, ropeRef(x, positions, heads, dim, llama31), tolerance.f32, 'f32 llama3 forward (angles in double)');
});

t.test('ropeBackward matches finite differences (f64)', async (t) => {
  const [tokens, heads, dim] = [5, 3, 10];
  const shape = [tokens, heads, dim];
  const positions = randomInts(rng, tokens, 0, 100000);
  const tpos = tensor(positions, [tokens]);
  const w = randomArray(rng, tokens * heads * dim);
  for (const [name, options] of variants) {
    const loss = async (v: Record<string, Float64Array>) => project(await rope(tensor(v.x, shape), tpos, options).toArray(), w);
    const analytic = await ropeBackward(tensor(w, shape), tpos, options).toArray();
    const result = await gradCheck({ x: randomArray(rng, w.length) }, { x: analytic }, loss, rng, { samples: 20 });
    t.ok(result.worst.error < 1e-7, `${name}: ${result.checked} coordinates, worst ${JSON.stringify(result.worst)}`);
  }
});

t.test('rope rejects bad inputs', async (t) => {
  const x = tensor(randomArray(rng, 24), [3, 2, 4], { dtype: 'f32' });
  const pos = tensor(new Int32Array([0, 1, 2]), [3]);
  const options = { theta: 10000 };
  const throwsCode = (fn: () => unknown, code: string, message: RegExp) => t.throws(fn, { code, message });
  const scaled = (scaling: object) => ({ theta: 10000, scaling }) as RopeOptions;
  throwsCode(() => rope(tensor(randomArray(rng, 6), [3, 2]), pos, options), 'ERR_SHAPE', /rope: x must have rank 3/);
  throwsCode(() => rope(tensor(randomArray(rng, 18), [3, 2, 3]), pos, options), 'ERR_SHAPE', /head dim D .* must be even/);
  throwsCode(() => rope(tensor(new Int32Array(24), [3, 2, 4]), pos, options), 'ERR_DTYPE', /x must be a floating-point/);
  throwsCode(() => rope(x, tensor([0, 1, 2], [3]), options), 'ERR_DTYPE', /positionIds must be i32/);
  throwsCode(() => rope(x, tensor(new Int32Array(2), [2]), options), 'ERR_SHAPE', /positionIds must have shape \[3\]/);
  throwsCode(() => rope(x, pos, { theta: 0 }), 'ERR_ARGUMENT', /theta must be finite and > 0/);
  throwsCode(() => rope(x, pos, { theta: NaN }), 'ERR_ARGUMENT', /theta/);
  throwsCode(() => rope(x, pos, scaled({ type: 'yarn', factor: 2 })), 'ERR_ARGUMENT', /scalingType must be/);
  throwsCode(() => rope(x, pos, scaled({ type: 'linear', factor: 0 })), 'ERR_ARGUMENT', /factor must be finite and > 0/);
  throwsCode(() => rope(x, pos, scaled({ type: 'llama3', factor: 8, lowFreqFactor: 4, highFreqFactor: 4 })), 'ERR_ARGUMENT', /highFreqFactor > lowFreqFactor/);
  throwsCode(() => rope(x, pos, scaled({ type: 'llama3', factor: 8, originalMaxPositionEmbeddings: -1 })), 'ERR_ARGUMENT', /originalMaxPositionEmbeddings/);
  throwsCode(() => ropeBackward(x, pos, scaled({ type: 'llama3', factor: 8, lowFreqFactor: 0 })), 'ERR_ARGUMENT', /lowFreqFactor/);
});
