import t from 'tap';
import { adamw, AdamwOptions, clipByNorm, gradNorm } from '../../lib/ops';
import { DType, tensor, Tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { hostRng, randomArray, testSeed } from '../helpers/random';
import { adamwStepRef, AdamwStateRef, clipFactorRef, gradNormRef } from '../reference/adamw';
import { trainDigestsWithThreads } from './nn-train-determinism-child';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const read = async (x: { toArray(): Promise<ArrayLike<number>> }) => Float64Array.from(await x.toArray());

// Odd sizes, one larger than a parallel range, one of them 2-D.
const shapes = [[1], [17], [65, 3], [20011]];

// [param, grad, moment dtypes]: f32 master weights with f32 or bf16 grads, the f64 check path,
// and f64 params with the trainer's f32 moments.
const dtypeCombos: Array<[DType, DType, DType]> = [
  ['f32', 'f32', 'f32'],
  ['f32', 'bf16', 'f32'],
  ['f64', 'f64', 'f64'],
  ['f64', 'f64', 'f32'],
];

for (const [paramDtype, gradDtype, momentDtype] of dtypeCombos) {
  for (const clipped of [false, true]) {
    for (const weightDecay of [0, 0.1]) {
      t.test(`adamw params ${paramDtype}, grads ${gradDtype}, moments ${momentDtype}, weightDecay ${weightDecay}${clipped ? ', clipped' : ''}`, async (t) => {
        const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
        const state: AdamwStateRef = {
          params: shapes.map((s) => randomArray(rng, numel(s))),
          m: shapes.map((s) => new Float64Array(numel(s))),
          v: shapes.map((s) => new Float64Array(numel(s))),
        };
        const params = state.params.map((p, i) => tensor(p, shapes[i], { dtype: paramDtype }));
        const m = shapes.map((s) => tensor(new Float64Array(numel(s)), s, { dtype: momentDtype }));
        const v = shapes.map((s) => tensor(new Float64Array(numel(s)), s, { dtype: momentDtype }));
        // the reference starts from the stored (f32-rounded) parameters
        state.params = await Promise.all(params.map(read));
        const hp = { lr: 1e-2 * (0.5 + rng.uniform()), beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay };
        for (let step = 1; step <= 4; step++) {
          const grads = shapes.map((s) => tensor(randomArray(rng, numel(s), 0.1 * step), s, { dtype: gradDtype }));
          const hostGrads = await Promise.all(grads.map(read));
          const options: AdamwOptions = { ...hp, step };
          let clip = 1;
          if (clipped) {
            const norm = gradNorm(grads);
            const normValue = await norm.item();
            assertClose(t, [normValue], [gradNormRef(hostGrads)], tolerance.f32, `step ${step}: gradNorm`);
            // maxGradNorm below the norm, so clipping takes effect
            options.maxGradNorm = normValue * 0.5;
            options.gradNorm = norm;
            clip = clipFactorRef(normValue, options.maxGradNorm);
          }
          adamw(params, grads, m, v, options);
          adamwStepRef(state, hostGrads, hp, step, clip);
        }
        const tol = paramDtype === 'f64' && momentDtype === 'f64' ? tolerance.f64 : { atol: 1e-6, rtol: 1e-5 };
        for (let i = 0; i < shapes.length; i++) {
          assertClose(t, await params[i].toArray(), state.params[i], tol, `params[${i}] [${shapes[i]}]`);
          assertClose(t, await m[i].toArray(), state.m[i], tol, `m[${i}]`);
          assertClose(t, await v[i].toArray(), state.v[i], tol, `v[${i}]`);
        }
      });
    }
  }
}

t.test('adamw without maxGradNorm ignores a gradNorm tensor', async (t) => {
  const g = randomArray(rng, 5);
  const run = async (norm?: Tensor) => {
    const p = tensor(new Float64Array(5).fill(1), [5]);
    adamw([p], [tensor(g, [5])], [tensor(new Float64Array(5), [5])], [tensor(new Float64Array(5), [5])], {
      lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, step: 1, gradNorm: norm,
    });
    return Array.from(await p.toArray());
  };
  t.same(await run(tensor([1e6], [1])), await run(), 'no clipping without maxGradNorm');
});

t.test('adamw skipUnlessFinite: a non-finite guard leaves params, m and v untouched; a finite one changes nothing', async (t) => {
  const n = 1 + rng.int(40);
  const start = { p: randomArray(rng, n), m: randomArray(rng, n, 0.01), v: randomArray(rng, n, 0.01).map(Math.abs) };
  const g = randomArray(rng, n);
  const run = async (guard?: number, dtype: DType = 'f32') => {
    const [p, m, v] = [start.p, start.m, start.v].map((x) => tensor(x, [n], { dtype: 'f32' }));
    adamw([p], [tensor(g, [n])], [m], [v], {
      lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, step: 2,
      skipUnlessFinite: guard === undefined ? undefined : tensor([guard], [1], { dtype }),
    });
    return Promise.all([p, m, v].map(async (x) => Array.from(await x.toArray())));
  };
  const stored = await Promise.all([start.p, start.m, start.v].map(async (x) => Array.from(await tensor(x, [n], { dtype: 'f32' }).toArray())));
  const updated = await run();
  t.notSame(updated[0], stored[0], 'the unguarded step moves the parameters');
  for (const bad of [NaN, Infinity, -Infinity]) {
    for (const dtype of ['f32', 'f64', 'bf16'] as DType[]) t.same(await run(bad, dtype), stored, `guard ${bad} (${dtype}): nothing changes`);
  }
  t.same(await run(1e30 * rng.uniform()), updated, 'a finite guard: the same step as without one');
  const f32 = tensor(randomArray(rng, n), [n], { dtype: 'f32' });
  t.throws(() => adamw([f32], [f32], [f32], [f32], { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 1, skipUnlessFinite: tensor([1, 2], [2]) }), { code: 'ERR_SHAPE' }, 'the guard is [1]');
});

t.test('gradNorm over several tensors and dtypes', async (t) => {
  for (const dtype of ['f32', 'f64', 'bf16', 'f16'] as DType[]) {
    const tensors = [[3], [17, 5], [40000]].map((s) => tensor(randomArray(rng, s.reduce((a, b) => a * b, 1)), s, { dtype }));
    const norm = gradNorm(tensors);
    t.equal(norm.dtype, 'f32', 'the norm is f32');
    t.same(norm.shape, [1]);
    assertClose(t, [await norm.item()], [gradNormRef(await Promise.all(tensors.map(read)))], tolerance.f32, `${dtype} norm`);
  }
  t.equal(await gradNorm([tensor(new Float32Array(7), [7])]).item(), 0, 'zeros have norm 0');
});

t.test('clipByNorm scales in place only above the limit', async (t) => {
  for (const dtype of ['f32', 'f64', 'bf16'] as DType[]) {
    const tensors = [[4], [9, 3]].map((s) => tensor(randomArray(rng, s.reduce((a, b) => a * b, 1)), s, { dtype }));
    const before = await Promise.all(tensors.map(read));
    const norm = gradNorm(tensors);
    const normValue = await norm.item();
    clipByNorm(tensors, norm, normValue * 2);
    for (let i = 0; i < tensors.length; i++) t.same(Array.from(await read(tensors[i])), Array.from(before[i]), `${dtype}: below the limit, unchanged`);
    const maxNorm = normValue / 3;
    clipByNorm(tensors, norm, maxNorm);
    const factor = clipFactorRef(normValue, maxNorm);
    for (let i = 0; i < tensors.length; i++) {
      assertClose(t, await tensors[i].toArray(), before[i].map((x) => x * factor), tolerance[dtype], `${dtype}: tensor ${i} scaled`);
    }
    assertClose(t, [await gradNorm(tensors).item()], [maxNorm], dtype === 'bf16' ? tolerance.bf16 : tolerance.f32, `${dtype}: norm now maxNorm`);
  }
});

t.test('gradNorm does not depend on the thread count', async (t) => {
  const one = trainDigestsWithThreads(1, 'gradNorm', seed);
  const two = trainDigestsWithThreads(2, 'gradNorm', seed);
  t.same(Object.keys(one).sort(), ['norm', 'normBf16']);
  t.same(two, one, 'identical bytes with 1 and 2 threads');
});

t.test('bad arguments throw before anything is queued', async (t) => {
  const f32 = (n: number) => tensor(randomArray(rng, n), [n], { dtype: 'f32' });
  const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 };
  const [p, g, m, v] = [f32(4), f32(4), f32(4), f32(4)];
  const arg = { code: 'ERR_ARGUMENT' };
  t.throws(() => adamw([p], [g, g], [m], [v], hp), arg, 'list lengths differ');
  t.throws(() => adamw([p], [g], [m], [v], { ...hp, step: 0 }), arg, 'step is 1-based');
  t.throws(() => adamw([p], [g], [m], [v], { ...hp, step: 1.5 }), arg, 'step is an integer');
  t.throws(() => adamw([p], [g], [m], [v], { ...hp, beta1: 1 }), arg, 'beta1 < 1');
  t.throws(() => adamw([p], [g], [m], [v], { ...hp, beta2: -0.1 }), arg, 'beta2 >= 0');
  t.throws(() => adamw([p], [g], [m], [v], { ...hp, lr: NaN }), arg, 'lr finite');
  t.throws(() => adamw([p], [g], [m], [v], { ...hp, eps: -1 }), arg, 'eps >= 0');
  t.throws(() => adamw([p], [g], [m], [v], { ...hp, weightDecay: -1 }), arg, 'weightDecay >= 0');
  t.throws(() => adamw([p], [g], [m], [v], { ...hp, maxGradNorm: 1 }), arg, 'clipping needs the gradNorm tensor');
  t.throws(() => adamw([p], [g], [m], [v], { ...hp, maxGradNorm: 1, gradNorm: f32(2) }), { code: 'ERR_SHAPE' }, 'gradNorm is [1]');
  t.throws(() => adamw([p], [g], [m], [f32(5)], hp), { code: 'ERR_SHAPE' }, 'v shape');
  t.throws(() => adamw([p], [f32(3)], [m], [v], hp), { code: 'ERR_SHAPE' }, 'grad shape');
  t.throws(() => adamw([tensor(randomArray(rng, 4), [4], { dtype: 'bf16' })], [g], [m], [v], hp), { code: 'ERR_DTYPE' }, 'params f32 or f64');
  t.throws(() => adamw([p], [g], [tensor(randomArray(rng, 4), [4], { dtype: 'bf16' })], [v], hp), { code: 'ERR_DTYPE' }, 'm f32 or f64');
  t.throws(() => adamw([p], [tensor(new Int32Array(4), [4])], [m], [v], hp), { code: 'ERR_DTYPE' }, 'grads floating');
  t.throws(() => gradNorm([g, tensor(new Int32Array(4), [4])]), { code: 'ERR_DTYPE' }, 'gradNorm of an i32 tensor');
  t.throws(() => clipByNorm([g], f32(2), 1), { code: 'ERR_SHAPE' }, 'clipByNorm norm is [1]');
  t.throws(() => clipByNorm([g], f32(1), -1), arg, 'maxNorm >= 0');
  t.throws(() => clipByNorm([tensor(new Int32Array(4), [4])], f32(1), 1), { code: 'ERR_DTYPE' }, 'clipByNorm of an i32 tensor');
});
