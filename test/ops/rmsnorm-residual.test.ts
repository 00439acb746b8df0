import t from 'tap';
import { rmsnormResidual, rmsnormResidualBackward } from '../../lib/ops';
import { DType, tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { gradCheck, project } from '../helpers/gradcheck';
import { hostRng, randomArray, testSeed } from '../helpers/random';
import { rmsnormBackwardRef, rmsnormRef } from '../reference/rmsnorm-residual';
import { digestsWithThreads } from './nn-determinism-child';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);
const eps = 1e-5;

const read = async (x: { toArray(): Promise<ArrayLike<number>> }) => Float64Array.from(await x.toArray());

// rstd is f64 for f64 inputs (exact gradient checks), f32 otherwise.
const backwardTol: Record<string, { atol: number; rtol: number }> = {
  f64: tolerance.f64,
  f32: tolerance.f32,
  bf16: tolerance.bf16,
};

for (const shape of [[1, 1], [3, 17], [17, 3], [65, 65], [2, 3, 17], [33, 1031]]) {
  const cols = shape[shape.length - 1];
  const rows = shape.reduce((a, b) => a * b, 1) / cols;
  const n = rows * cols;
  for (const dtype of ['f32', 'f64', 'bf16'] as DType[]) {
    t.test(`rmsnormResidual ${dtype} [${shape}]`, async (t) => {
      const tx = tensor(randomArray(rng, n), shape, { dtype });
      const tres = tensor(randomArray(rng, n), shape, { dtype });
      const tw = tensor(randomArray(rng, cols, 0.5).map((v) => 1 + v), [cols], { dtype });
      // references use the stored (for bf16: rounded) inputs
      const [x, res, w] = await Promise.all([tx, tres, tw].map(read));
      const tol = tolerance[dtype];

      const fwd = rmsnormResidual(tx, tw, { eps, residual: tres });
      t.equal(fwd.rstd.dtype, dtype === 'f64' ? 'f64' : 'f32', 'rstd is f32 (f64 for f64 input)');
      t.same(fwd.rstd.shape, [rows], 'rstd has one value per row');
      const want = rmsnormRef(x, res, w, cols, eps);
      assertClose(t, await fwd.sum.toArray(), want.sum, tol, 'sum');
      assertClose(t, await fwd.out.toArray(), want.out, tol, 'out');
      // rstd normalises the stored sum (bf16-rounded for bf16)
      const sum = await read(fwd.sum);
      assertClose(t, await fwd.rstd.toArray(), rmsnormRef(sum, null, w, cols, eps).rstd, dtype === 'f64' ? tolerance.f64 : tolerance.f32, 'rstd');

      const plain = rmsnormResidual(tx, tw, { eps });
      t.same(Buffer.from(await plain.sum.toBytes()), Buffer.from(await tx.toBytes()), 'without residual, sum is a copy of x');
      assertClose(t, await plain.out.toArray(), rmsnormRef(x, null, w, cols, eps).out, tol, 'out without residual');

      const tdout = tensor(randomArray(rng, n), shape, { dtype });
      const tdsum = tensor(randomArray(rng, n), shape, { dtype });
      const [dout, dsum] = await Promise.all([tdout, tdsum].map(read));
      const grads = rmsnormResidualBackward(tdout, fwd, tw, { dsum: tdsum });
      const wantGrads = rmsnormBackwardRef(dout, sum, w, dsum, cols, eps);
      assertClose(t, await grads.dx.toArray(), wantGrads.dx, backwardTol[dtype], 'dx');
      assertClose(t, await grads.dweight!.toArray(), wantGrads.dweight, backwardTol[dtype], 'dweight');

      const dxOnly = rmsnormResidualBackward(tdout, fwd, tw, { needWeight: false });
      t.equal(dxOnly.dweight, undefined, 'needWeight: false returns no dweight');
      assertClose(t, await dxOnly.dx.toArray(), rmsnormBackwardRef(dout, sum, w, null, cols, eps).dx, backwardTol[dtype], 'dx without dsum');
    });
  }
}

for (const [rows, cols] of [[1, 1], [3, 17], [5, 65]]) {
  t.test(`rmsnormResidual gradients match finite differences (f64 [${rows},${cols}])`, async (t) => {
    const n = rows * cols;
    const inputs = { x: randomArray(rng, n), residual: randomArray(rng, n), weight: randomArray(rng, cols) };
    const wOut = randomArray(rng, n);
    const wSum = randomArray(rng, n);
    const make = (a: Float64Array, shape: number[]) => tensor(a, shape, { dtype: 'f64' });
    const loss = async (v: Record<string, Float64Array>) => {
      const f = rmsnormResidual(make(v.x, [rows, cols]), make(v.weight, [cols]), { eps, residual: make(v.residual, [rows, cols]) });
      return project(await f.out.toArray(), wOut) + project(await f.sum.toArray(), wSum);
    };
    const tw = make(inputs.weight, [cols]);
    const fwd = rmsnormResidual(make(inputs.x, [rows, cols]), tw, { eps, residual: make(inputs.residual, [rows, cols]) });
    const g = rmsnormResidualBackward(make(wOut, [rows, cols]), fwd, tw, { dsum: make(wSum, [rows, cols]) });
    const dx = await g.dx.toArray();
    const result = await gradCheck(inputs, { x: dx, residual: dx, weight: await g.dweight!.toArray() }, loss, rng);
    t.ok(result.worst.error < 1e-5, `${result.checked} coordinates, worst ${JSON.stringify(result.worst)}`);
  });
}

t.test('rmsnormResidual and its backward do not depend on the thread count', async (t) => {
  const one = digestsWithThreads(1, 'rmsnorm', seed);
  const two = digestsWithThreads(2, 'rmsnorm', seed);
  t.same(Object.keys(one).sort(), ['dweight', 'dx', 'out', 'rstd', 'sum']);
  t.same(two, one, 'identical bytes with 1 and 2 threads');
});

t.test('rmsnormResidual rejects bad inputs', async (t) => {
  // randomArray gives Float64Array, which tensor() stores as f64 unless told otherwise
  const f32 = (n: number, shape: number[]) => tensor(randomArray(rng, n), shape, { dtype: 'f32' });
  const x = f32(12, [3, 4]);
  const w = f32(4, [4]);
  const fwd = rmsnormResidual(x, w, { eps });
  const dout = f32(12, [3, 4]);
  const ints = tensor(new Int32Array(12), [3, 4]);
  const throwsCode = (fn: () => unknown, code: string, message: RegExp) => t.throws(fn, { code, message });

  throwsCode(() => rmsnormResidual(ints, w, { eps }), 'ERR_DTYPE', /rmsnormResidual: x must be a floating-point tensor/);
  throwsCode(() => rmsnormResidual(tensor([], [3, 0]), tensor([], [0]), { eps }), 'ERR_SHAPE', /non-empty last dim/);
  throwsCode(() => rmsnormResidual(tensor([1], []), w, { eps }), 'ERR_SHAPE', /rank >= 1/);
  throwsCode(() => rmsnormResidual(x, f32(3, [3]), { eps }), 'ERR_SHAPE', /weight must have shape \[4\]/);
  throwsCode(() => rmsnormResidual(x, tensor(randomArray(rng, 4), [4], { dtype: 'bf16' }), { eps }), 'ERR_DTYPE', /weight/);
  throwsCode(() => rmsnormResidual(x, w, { eps, residual: f32(8, [2, 4]) }), 'ERR_SHAPE', /residual/);
  throwsCode(() => rmsnormResidual(x, w, { eps, residual: tensor(randomArray(rng, 12), [3, 4], { dtype: 'f64' }) }), 'ERR_DTYPE', /residual/);
  throwsCode(() => rmsnormResidual(x, w, { eps: -1 }), 'ERR_ARGUMENT', /eps must be finite and >= 0/);
  throwsCode(() => rmsnormResidual(x, w, { eps: NaN }), 'ERR_ARGUMENT', /eps/);
  throwsCode(() => rmsnormResidual(x, w, {} as { eps: number }), 'ERR_ARGUMENT', /missing attribute 'eps'/);

  const B = 'rmsnormResidualBackward';
  throwsCode(() => rmsnormResidualBackward(f32(8, [2, 4]), fwd, w), 'ERR_SHAPE', new RegExp(`${B}: dout .* and sum`));
  throwsCode(() => rmsnormResidualBackward(tensor(randomArray(rng, 12), [3, 4], { dtype: 'f64' }), fwd, w), 'ERR_DTYPE', /sum/);
  throwsCode(() => rmsnormResidualBackward(dout, { ...fwd, rstd: tensor([1, 2, 3], [3], { dtype: 'i32' }) }, w), 'ERR_DTYPE', /rstd must be f32\|f64/);
  throwsCode(() => rmsnormResidualBackward(dout, { ...fwd, rstd: tensor([1, 2], [2]) }, w), 'ERR_SHAPE', /rstd must have shape \[3\]/);
  throwsCode(() => rmsnormResidualBackward(dout, fwd, tensor([1, 2], [2])), 'ERR_SHAPE', /weight/);
  throwsCode(() => rmsnormResidualBackward(dout, fwd, w, { dsum: f32(4, [4]) }), 'ERR_SHAPE', /dsum/);
  throwsCode(() => rmsnormResidualBackward(dout, fwd, w, { dsum: ints }), 'ERR_DTYPE', /dsum/);
});
