import t from 'tap';
import { SeqtuneError } from '../../lib/errors';
import { add, scale, sum } from '../../lib/ops';
import { Rng } from '../../lib/rng';
import { keep, randn, scope, sync, Tensor, tensor, zeros } from '../../lib/tensor';
import { memoryStats } from '../../lib/device';
import { hostRng, randomArray, testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

t.test('round trip honours TypedArray byteOffset', async (t) => {
  const backing = new Float32Array(10).map((_, i) => i);
  const view = new Float32Array(backing.buffer, 12, 5); // elements 3..7
  t.same(Array.from(await tensor(view, [5]).toArray()), [3, 4, 5, 6, 7]);
  const ints = new Int32Array([9, 8, 7, 6]).subarray(1);
  t.same(Array.from(await tensor(ints, [3], { dtype: 'i32' }).toArray()), [8, 7, 6]);
  const f64 = randomArray(rng, 7);
  t.same(Array.from(await tensor(f64, [7], { dtype: 'f64' }).toArray()), Array.from(f64));
});

t.test('reshape and rows share storage', async (t) => {
  const data = randomArray(rng, 12);
  const x = tensor(data, [4, 3], { dtype: 'f32' });
  t.same(x.reshape([2, 6]).shape, [2, 6]);
  const middle = x.rows(1, 2);
  t.same(Array.from(await middle.toArray()), Array.from(Float32Array.from(data).slice(3, 9)));
  t.throws(() => x.reshape([5]), { code: 'ERR_SHAPE' });
  t.throws(() => x.rows(3, 2), { code: 'ERR_SHAPE' });
});

t.test('a disposed tensor gives ERR_DISPOSED everywhere', async (t) => {
  const x = tensor([1, 2, 3], [3]);
  x.dispose();
  x.dispose(); // twice is fine
  t.ok(x.disposed);
  t.throws(() => add(x, x), { code: 'ERR_DISPOSED', message: /add: input 0 was disposed/ }, 'naming the op and the input');
  t.throws(() => x.reshape([3]), { code: 'ERR_DISPOSED' });
  await t.rejects(async () => x.toArray(), { code: 'ERR_DISPOSED' });
});

t.test('dispose while queued work still reads the tensor is safe', async (t) => {
  const x = randn([256, 256], { rng: new Rng(seed & 0xfff) });
  const y = scale(x, 2);
  x.dispose(); // scale may not have run yet: its storage must stay alive for it
  const values = await y.toArray();
  t.equal(values.length, 65536);
  t.ok(values.every(Number.isFinite));
});

t.test('absurd and invalid allocations fail cleanly', async (t) => {
  t.throws(() => zeros([1e6, 1e6, 1e6]), { code: 'ERR_OUT_OF_MEMORY' });
  t.throws(() => zeros([2 ** 20, 2 ** 20]), { code: 'ERR_OUT_OF_MEMORY' }, '4 TiB is above the allocation limit');
  t.throws(() => zeros([-1, 3]), { code: 'ERR_SHAPE' });
  t.throws(() => zeros([1.5]), { code: 'ERR_SHAPE' });
  t.throws(() => tensor([1, 2, 3], [2]), { code: 'ERR_SHAPE' });
  t.throws(() => zeros([2], { dtype: 'f8' as never }), { code: 'ERR_DTYPE' });
  t.throws(() => zeros([2], { device: 'tpu:0' }), { code: 'ERR_DEVICE' });
});

t.test('errors are SeqtuneErrors naming the op and shapes', async (t) => {
  const a = tensor([1, 2, 3, 4], [2, 2]);
  const b = tensor([1, 2, 3], [3]);
  const error = t.throws(() => add(a, b)) as unknown as SeqtuneError;
  t.ok(error instanceof SeqtuneError);
  t.equal(error.code, 'ERR_SHAPE');
  t.match(error.message, /add: .*f32\[2,2\].*f32\[3\]/);
  t.throws(() => add(a, tensor([1, 2, 3, 4], [2, 2], { dtype: 'f64' })), { code: 'ERR_DTYPE' });
  t.throws(() => add(tensor([1, 2], [2], { dtype: 'i32' }), tensor([1, 2], [2], { dtype: 'i32' })), { code: 'ERR_DTYPE' });
});

t.test('scope disposes step-local tensors and keeps results', async (t) => {
  const before = memoryStats('cpu').bytesInUse;
  let inner: Tensor | undefined;
  let kept: Tensor | undefined;
  const result = scope(() => {
    inner = tensor(randomArray(rng, 1000), [1000]);
    kept = keep(scale(inner, 3));
    return { doubled: scale(inner, 2) };
  });
  t.ok(inner!.disposed, 'temporary disposed');
  t.notOk(result.doubled.disposed, 'returned tensor survives');
  t.notOk(kept!.disposed, 'kept tensor survives');
  const asyncResult = await scope(async () => {
    const a = tensor([1, 2], [2]);
    await sync();
    return [scale(a, 10), a.describe()] as const;
  });
  t.same(Array.from(await asyncResult[0].toArray()), [10, 20]);
  result.doubled.dispose();
  kept!.dispose();
  asyncResult[0].dispose();
  await sync();
  t.equal(memoryStats('cpu').bytesInUse, before, 'all memory returned');
});

t.test('scope disposes on throw', async (t) => {
  let inner: Tensor | undefined;
  t.throws(() =>
    scope(() => {
      inner = tensor([1], [1]);
      throw new Error('boom');
    }),
  );
  t.ok(inner!.disposed);
});

t.test('memory stats track live tensors and peak', async (t) => {
  await sync();
  const start = memoryStats('cpu', { resetPeak: true });
  const big = zeros([1024, 1024]);
  const during = memoryStats('cpu');
  t.equal(during.bytesInUse - start.bytesInUse, 4 * 1024 * 1024);
  big.dispose();
  await sync();
  const after = memoryStats('cpu');
  t.equal(after.bytesInUse, start.bytesInUse);
  t.ok(after.peakBytes >= start.bytesInUse + 4 * 1024 * 1024);
});

t.test('long work does not block the event loop', async (t) => {
  const x = randn([1 << 22], { rng: new Rng(1) });
  let total = sum(x);
  for (let i = 0; i < 8; i++) total = sum(scale(x, 1 + i));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const started = Date.now();
  const value = await total.item();
  clearInterval(timer);
  const elapsed = Date.now() - started;
  t.ok(Number.isFinite(value));
  // The queued ops took `elapsed` ms on the device thread; the JS thread kept ticking meanwhile.
  t.ok(elapsed < 20 || ticks >= Math.floor(elapsed / 20), `${ticks} timer ticks during ${elapsed} ms of queued work`);
});
