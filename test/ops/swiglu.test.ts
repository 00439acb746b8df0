import t from 'tap';
import { swiglu, swigluBackward } from '../../lib/ops';
import { DType, tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { gradCheck, project } from '../helpers/gradcheck';
import { hostRng, randomArray, testSeed } from '../helpers/random';
import { swigluBackwardRef, swigluRef } from '../reference/swiglu';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const read = async (x: { toArray(): Promise<ArrayLike<number>> }) => Float64Array.from(await x.toArray());

for (const shape of [[1], [3, 1], [17, 3], [65, 65], [9, 4099]]) {
  const n = shape.reduce((a, b) => a * b, 1);
  for (const dtype of ['f32', 'f64', 'bf16'] as DType[]) {
    t.test(`swiglu ${dtype} [${shape}]`, async (t) => {
      // scale 4 reaches the saturated ends of the sigmoid
      const [tg, tu, td] = [4, 1, 1].map((s) => tensor(randomArray(rng, n, s), shape, { dtype }));
      const [gate, up, dout] = await Promise.all([tg, tu, td].map(read));
      const tol = tolerance[dtype];
      const out = swiglu(tg, tu);
      t.equal(out.dtype, dtype);
      t.same(out.shape, shape);
      assertClose(t, await out.toArray(), swigluRef(gate, up), tol, 'forward');
      const { dgate, dup } = swigluBackward(td, tg, tu);
      const want = swigluBackwardRef(dout, gate, up);
      assertClose(t, await dgate.toArray(), want.dgate, tol, 'dgate');
      assertClose(t, await dup.toArray(), want.dup, tol, 'dup');
    });
  }
}

t.test('swiglu at extreme gates stays finite', async (t) => {
  const gate = [-1000, -90, 0, 90, 1000];
  const tg = tensor(gate, [5], { dtype: 'f32' });
  const tu = tensor([1, 1, 1, 1, 1], [5], { dtype: 'f32' });
  assertClose(t, await swiglu(tg, tu).toArray(), [0, 0, 0, 90, 1000], tolerance.f32, 'silu saturates to 0 and to g');
  const { dgate } = swigluBackward(tu, tg, tu);
  assertClose(t, await dgate.toArray(), [0, 0, 0.5, 1, 1], tolerance.f32, "silu' saturates to 0 and 1");
});

t.test('swigluBackward matches finite differences (f64)', async (t) => {
  const shape = [7, 9];
  const n = 63;
  const inputs = { gate: randomArray(rng, n, 3), up: randomArray(rng, n) };
  const w = randomArray(rng, n);
  const f64 = (a: Float64Array) => tensor(a, shape, { dtype: 'f64' });
  const loss = async (v: Record<string, Float64Array>) => project(await swiglu(f64(v.gate), f64(v.up)).toArray(), w);
  const { dgate, dup } = swigluBackward(f64(w), f64(inputs.gate), f64(inputs.up));
  const result = await gradCheck(inputs, { gate: await dgate.toArray(), up: await dup.toArray() }, loss, rng, { samples: 20 });
  t.ok(result.worst.error < 1e-7, `${result.checked} coordinates, worst ${JSON.stringify(result.worst)}`);
});

t.test('swiglu rejects bad inputs', async (t) => {
  const a = tensor(randomArray(rng, 6), [2, 3], { dtype: 'f32' });
  const throwsCode = (fn: () => unknown, code: string, message: RegExp) => t.throws(fn, { code, message });
  throwsCode(() => swiglu(a, tensor(randomArray(rng, 6), [3, 2], { dtype: 'f32' })), 'ERR_SHAPE', /swiglu: gate .* and up .* same shape/);
  throwsCode(() => swiglu(a, tensor(randomArray(rng, 6), [2, 3], { dtype: 'bf16' })), 'ERR_DTYPE', /same dtype/);
  throwsCode(() => swiglu(tensor(new Int32Array(6), [2, 3]), tensor(new Int32Array(6), [2, 3])), 'ERR_DTYPE', /gate must be a floating-point/);
  throwsCode(() => swigluBackward(tensor(randomArray(rng, 3), [3], { dtype: 'f32' }), a, a), 'ERR_SHAPE', /swigluBackward: dout/);
  throwsCode(() => swigluBackward(a, a, tensor(randomArray(rng, 6), [2, 3])), 'ERR_DTYPE', /up/);
});
