import t from 'tap';
import { loraLinear, loraLinearBackward, LoraOptions } from '../../lib/ops';
import { DType, tensor, Tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { gradCheck, project } from '../helpers/gradcheck';
import { hostRng, randomArray, testSeed } from '../helpers/random';
import { LoraDimsRef, loraDropoutScale, loraLinearBackwardRef, loraLinearRef } from '../reference/lora';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const read = async (x: { toArray(): Promise<ArrayLike<number>> }) => Float64Array.from(await x.toArray());

// Products over `in` and `out` features: f32 rounding grows with their length.
const productTol: Record<string, { atol: number; rtol: number }> = {
  f64: tolerance.f64,
  f32: { atol: 1e-4, rtol: 1e-4 },
  bf16: { atol: 5e-2, rtol: 2e-2 },
};

// Seeds above 2^32 exercise the high word of the Philox key.
const dropoutDraw = () => ({ p: 0.3, seed: rng.int(2 ** 31) * 4 + rng.int(4), offset: rng.int(1000) });

interface LoraSetup {
  dims: LoraDimsRef;
  tensors: { x: Tensor; w: Tensor; a: Tensor; b: Tensor; bias: Tensor | undefined };
  host: { x: Float64Array; w: Float64Array; a: Float64Array; b: Float64Array; bias: Float64Array | null };
}

async function setup(dims: LoraDimsRef, dtype: DType, withBias: boolean): Promise<LoraSetup> {
  const { tokens, in: inF, out: outF, rank } = dims;
  const make = (n: number, shape: number[], scale = 1) => tensor(randomArray(rng, n, scale), shape, { dtype });
  // A and B both non-zero (PEFT starts B at zero; a trained adapter has both).
  const tensors = {
    x: make(tokens * inF, [tokens, inF]),
    w: make(outF * inF, [outF, inF], 1 / Math.sqrt(inF)),
    a: make(rank * inF, [rank, inF], 1 / Math.sqrt(inF)),
    b: make(outF * rank, [outF, rank], 0.5),
    bias: withBias ? make(outF, [outF]) : undefined,
  };
  const [x, w, a, b] = await Promise.all([tensors.x, tensors.w, tensors.a, tensors.b].map(read));
  return { dims, tensors, host: { x, w, a, b, bias: tensors.bias ? await read(tensors.bias) : null } };
}

const shapes: LoraDimsRef[] = [
  { tokens: 1, in: 5, out: 3, rank: 1 },
  { tokens: 3, in: 17, out: 9, rank: 4 },
  { tokens: 17, in: 33, out: 37, rank: 8 },
  { tokens: 65, in: 40, out: 17, rank: 3 },
];

for (const dims of shapes) {
  for (const dtype of (dims.tokens === 17 ? ['f32', 'f64', 'bf16'] : ['f32']) as DType[]) {
    for (const withDropout of [false, true]) {
      const label = `T=${dims.tokens} in=${dims.in} out=${dims.out} r=${dims.rank} ${dtype}${withDropout ? ' dropout' : ''}`;
      t.test(`loraLinear ${label}`, async (t) => {
        const { tensors: ts, host } = await setup(dims, dtype, dims.tokens !== 3);
        const scale = 0.5 + rng.uniform() * 2;
        const dropout = withDropout ? dropoutDraw() : undefined;
        const options: LoraOptions = { scale, bias: ts.bias, dropout };
        const tol = productTol[dtype];
        const fwd = loraLinear(ts.x, ts.w, ts.a, ts.b, options);
        const want = loraLinearRef(host.x, host.w, host.a, host.b, host.bias, dims, scale, dropout ?? null);
        t.same(fwd.xa.shape, [dims.tokens, dims.rank], 'xa is [T, r]');
        assertClose(t, await fwd.out.toArray(), want.out, tol, 'out');
        assertClose(t, await fwd.xa.toArray(), want.xa, tol, 'xa');

        const tdy = tensor(randomArray(rng, dims.tokens * dims.out), [dims.tokens, dims.out], { dtype });
        const dy = await read(tdy);
        const wantGrad = loraLinearBackwardRef(dy, host.x, host.w, host.a, host.b, dims, scale, dropout ?? null);
        const g = loraLinearBackward(tdy, ts.x, ts.w, ts.a, ts.b, fwd.xa, { ...options, needInput: true });
        assertClose(t, await g.dx!.toArray(), wantGrad.dx, tol, 'dx');
        assertClose(t, await g.da.toArray(), wantGrad.da, tol, 'da');
        // dB uses the stored xa (rounded to bf16 for bf16), as the op does.
        assertClose(t, await g.db.toArray(), wantGrad.db, dtype === 'bf16' ? { atol: 0.1, rtol: 5e-2 } : tol, 'db');
        const adapterOnly = loraLinearBackward(tdy, ts.x, ts.w, ts.a, ts.b, fwd.xa, { ...options, needInput: false });
        t.equal(adapterOnly.dx, undefined, 'needInput: false returns no dx');
        t.same(Buffer.from(await adapterOnly.da.toBytes()), Buffer.from(await g.da.toBytes()), 'da does not depend on needInput');
      });
    }
  }
}

t.test('a bf16 base layer with f32 adapters', async (t) => {
  const dims = { tokens: 17, in: 33, out: 37, rank: 8 };
  const base = await setup(dims, 'bf16', true);
  const adapter = await setup(dims, 'f32', false);
  const [x, w, bias, a, b] = [base.tensors.x, base.tensors.w, base.tensors.bias!, adapter.tensors.a, adapter.tensors.b];
  const dropout = dropoutDraw();
  const options: LoraOptions = { scale: 2, bias, dropout };
  const fwd = loraLinear(x, w, a, b, options);
  t.equal(fwd.out.dtype, 'bf16', 'out has the dtype of x');
  t.equal(fwd.xa.dtype, 'f32', 'xa has the dtype of the adapter');
  const want = loraLinearRef(base.host.x, base.host.w, adapter.host.a, adapter.host.b, base.host.bias, dims, 2, dropout);
  assertClose(t, await fwd.out.toArray(), want.out, productTol.bf16, 'out');
  assertClose(t, await fwd.xa.toArray(), want.xa, productTol.f32, 'xa');
  const tdy = tensor(randomArray(rng, dims.tokens * dims.out), [dims.tokens, dims.out], { dtype: 'bf16' });
  const g = loraLinearBackward(tdy, x, w, a, b, fwd.xa, options);
  t.same([g.dx!.dtype, g.da.dtype, g.db.dtype], ['bf16', 'f32', 'f32'], 'each gradient has its input dtype');
  const wantGrad = loraLinearBackwardRef(await read(tdy), base.host.x, base.host.w, adapter.host.a, adapter.host.b, dims, 2, dropout);
  assertClose(t, await g.dx!.toArray(), wantGrad.dx, productTol.bf16, 'dx');
  assertClose(t, await g.da.toArray(), wantGrad.da, productTol.f32, 'da');
  assertClose(t, await g.db.toArray(), wantGrad.db, productTol.f32, 'db');
});

t.test('dropout drops about p of the adapter input and depends on seed and offset', async (t) => {
  const dims = { tokens: 64, in: 50, out: 4, rank: 50 };
  // A = identity, B = 0: xa is drop(x) itself.
  const eye = Float64Array.from({ length: 50 * 50 }, (_, i) => (i % 51 === 0 ? 1 : 0));
  const x = tensor(new Float64Array(64 * 50).fill(1), [64, 50]);
  const w = tensor(new Float64Array(4 * 50), [4, 50]);
  const run = (d: { p: number; seed: number; offset: number }) =>
    loraLinear(x, w, tensor(eye, [50, 50]), tensor(new Float64Array(4 * 50), [4, 50]), { scale: 1, dropout: d }).xa.toArray();
  const draw = { p: 0.25, seed: 1234 + rng.int(1000), offset: 7 };
  const xa = await run(draw);
  const kept = xa.filter((v) => v !== 0);
  t.ok(kept.every((v) => Math.abs(v - 1 / 0.75) < 1e-12), 'kept values are scaled by 1/(1-p)');
  t.ok(Math.abs(kept.length / xa.length - 0.75) < 0.05, `kept fraction ${kept.length / xa.length}`);
  t.same(Array.from(xa), Array.from(loraDropoutScale(xa.length, draw)), 'mask is the shared Philox definition');
  t.notSame(Array.from(await run({ ...draw, offset: 8 })), Array.from(xa), 'another offset draws another mask');
  t.notSame(Array.from(await run({ ...draw, seed: draw.seed + 1 })), Array.from(xa), 'another seed draws another mask');
});

for (const withDropout of [false, true]) {
  t.test(`loraLinearBackward matches finite differences (f64${withDropout ? ', dropout' : ''})`, async (t) => {
    const dims = { tokens: 5, in: 7, out: 6, rank: 3 };
    const { tokens, in: inF, out: outF, rank } = dims;
    const inputs = {
      x: randomArray(rng, tokens * inF),
      w: randomArray(rng, outF * inF),
      a: randomArray(rng, rank * inF),
      b: randomArray(rng, outF * rank),
    };
    const bias = tensor(randomArray(rng, outF), [outF]);
    const options: LoraOptions = { scale: 1.7, bias, dropout: withDropout ? { p: 0.4, seed: rng.int(1 << 30), offset: rng.int(100) } : undefined };
    const wOut = randomArray(rng, tokens * outF);
    const forward = (v: Record<string, Float64Array>) =>
      loraLinear(tensor(v.x, [tokens, inF]), tensor(v.w, [outF, inF]), tensor(v.a, [rank, inF]), tensor(v.b, [outF, rank]), options);
    const loss = async (v: Record<string, Float64Array>) => project(await forward(v).out.toArray(), wOut);
    const fwd = forward(inputs);
    const g = loraLinearBackward(
      tensor(wOut, [tokens, outF]),
      tensor(inputs.x, [tokens, inF]),
      tensor(inputs.w, [outF, inF]),
      tensor(inputs.a, [rank, inF]),
      tensor(inputs.b, [outF, rank]),
      fwd.xa,
      options,
    );
    const analytic = { x: await g.dx!.toArray(), a: await g.da.toArray(), b: await g.db.toArray() };
    const result = await gradCheck(inputs, analytic, loss, rng, { samples: 12 });
    t.ok(result.worst.error < 1e-6, `worst error ${JSON.stringify(result.worst)} over ${result.checked} coordinates`);
  });
}

t.test('no tokens: empty outputs, zero adapter gradients', async (t) => {
  const f64 = (n: number, shape: number[]) => tensor(randomArray(rng, n), shape, { dtype: 'f64' });
  const [x, w, a, b] = [tensor([], [0, 4], { dtype: 'f64' }), f64(12, [3, 4]), f64(8, [2, 4]), f64(6, [3, 2])];
  const fwd = loraLinear(x, w, a, b, { scale: 1 });
  t.same(fwd.out.shape, [0, 3]);
  const g = loraLinearBackward(tensor([], [0, 3], { dtype: 'f64' }), x, w, a, b, fwd.xa, { scale: 1 });
  t.same(Array.from(await g.da.toArray()), new Array(8).fill(0), 'da is zero');
  t.same(Array.from(await g.db.toArray()), new Array(6).fill(0), 'db is zero');
});

t.test('bad arguments throw before anything is queued', async (t) => {
  const f32 = (shape: number[]) => tensor(randomArray(rng, shape.reduce((p, q) => p * q, 1)), shape, { dtype: 'f32' });
  const [x, w, a, b] = [f32([3, 4]), f32([5, 4]), f32([2, 4]), f32([5, 2])];
  const fwd = loraLinear(x, w, a, b, { scale: 1 });
  const dy = f32([3, 5]);
  const shapeErr = { code: 'ERR_SHAPE' };
  t.throws(() => loraLinear(x, f32([5, 3]), a, b, { scale: 1 }), shapeErr, 'weight in-features differ from x');
  t.throws(() => loraLinear(x, w, f32([2, 3]), b, { scale: 1 }), shapeErr, 'a in-features differ');
  t.throws(() => loraLinear(x, w, a, f32([5, 3]), { scale: 1 }), shapeErr, 'b rank differs from a');
  t.throws(() => loraLinear(x, w, a, f32([4, 2]), { scale: 1 }), shapeErr, 'b out-features differ from weight');
  t.throws(() => loraLinear(x, w, f32([0, 4]), f32([5, 0]), { scale: 1 }), shapeErr, 'rank 0');
  t.throws(() => loraLinear(f32([12]), w, a, b, { scale: 1 }), shapeErr, 'x must be 2-D');
  t.throws(() => loraLinear(x, w, a, b, { scale: 1, bias: f32([4]) }), shapeErr, 'bias must be [out]');
  t.throws(() => loraLinear(x, w, tensor(new Int32Array(8), [2, 4]), b, { scale: 1 }), { code: 'ERR_DTYPE' }, 'a must be floating');
  t.throws(() => loraLinear(tensor(new Int32Array(12), [3, 4]), w, a, b, { scale: 1 }), { code: 'ERR_DTYPE' }, 'x must be floating');
  t.throws(() => loraLinear(x, w, a, b, { scale: NaN }), { code: 'ERR_ARGUMENT' }, 'scale must be finite');
  t.throws(() => loraLinear(x, w, a, b, { scale: 1, dropout: { p: 1.5, seed: 1, offset: 0 } }), { code: 'ERR_ARGUMENT' }, 'dropout p in [0, 1]');
  t.throws(() => loraLinear(x, w, a, b, { scale: 1, dropout: { p: 0.1, seed: -1, offset: 0 } }), { code: 'ERR_ARGUMENT' }, 'seed >= 0');
  t.throws(() => loraLinearBackward(f32([3, 4]), x, w, a, b, fwd.xa, { scale: 1 }), shapeErr, 'dy must be [T, out]');
  t.throws(() => loraLinearBackward(dy, x, w, a, b, f32([3, 3]), { scale: 1 }), shapeErr, 'xa must be [T, r]');
  t.throws(() => loraLinearBackward(dy, x, w, a, b, tensor(new Int32Array(6), [3, 2]), { scale: 1 }), { code: 'ERR_DTYPE' }, 'xa must be floating');
});
