import t from 'tap';
import { linearCrossEntropy, linearCrossEntropyBackward } from '../../lib/ops';
import { DType, tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { gradCheck } from '../helpers/gradcheck';
import { hostRng, randomArray, testSeed } from '../helpers/random';
import { linearCrossEntropyBackwardRef, linearCrossEntropyRef, LossOptionsRef } from '../reference/cross-entropy';
import { trainDigestsWithThreads } from './nn-train-determinism-child';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const read = async (x: { toArray(): Promise<ArrayLike<number>> }) => Float64Array.from(await x.toArray());

function labelsFor(rows: number, vocab: number): Int32Array {
  return Int32Array.from({ length: rows }, () => (rng.uniform() < 0.25 ? -100 : rng.int(vocab)));
}

// Loss statistics are f32 (f64 for f64) computed from the stored inputs; dh and dW are stored in
// the input dtype. bf16 gradients are rounded once at the end.
const statsTol: Record<string, { atol: number; rtol: number }> = { f64: tolerance.f64, f32: tolerance.f32, bf16: tolerance.f32 };

// [vocab, chunk sizes]: chunks smaller than V that do not divide it, and one larger than V.
const vocabs: Array<[number, number[]]> = [
  [5, [2, 4096]],
  [37, [8]],
  [1000, [300]],
];

for (const rows of [1, 3, 17, 65]) {
  for (const [vocab, chunks] of vocabs) {
    for (const dtype of (rows === 17 ? ['f32', 'f64', 'bf16'] : ['f32']) as DType[]) {
      t.test(`linearCrossEntropy ${dtype} T=${rows} V=${vocab} chunks ${chunks}`, async (t) => {
        const features = 33;
        const th = tensor(randomArray(rng, rows * features), [rows, features], { dtype });
        const tw = tensor(randomArray(rng, vocab * features, 0.3), [vocab, features], { dtype });
        const [h, w] = await Promise.all([th, tw].map(read));
        const labels = labelsFor(rows, vocab);
        const tlab = tensor(labels, [rows]);
        for (const chunkSize of chunks) {
          for (const reduction of ['mean', 'sum'] as const) {
            const o: LossOptionsRef = { ignoreIndex: -100, reduction };
            const what = `chunk ${chunkSize} ${reduction}`;
            const want = linearCrossEntropyRef(h, w, labels, features, vocab, o);
            const got = linearCrossEntropy(th, tw, tlab, { reduction, chunkSize });
            assertClose(t, await got.loss.toArray(), [want.loss], statsTol[dtype], `${what}: loss`);
            assertClose(t, await got.lse.toArray(), want.lse, statsTol[dtype], `${what}: lse`);
            t.equal(await got.count.item(), want.count, `${what}: count`);

            const gradScale = 0.5 + rng.uniform();
            const wantGrad = linearCrossEntropyBackwardRef(h, w, labels, features, vocab, o, gradScale);
            const g = linearCrossEntropyBackward(th, tw, tlab, got, { reduction, chunkSize, gradScale });
            t.equal(g.dh.dtype, dtype, 'dh keeps the dtype of h');
            assertClose(t, await g.dh.toArray(), wantGrad.dh, tolerance[dtype], `${what}: dh`);
            assertClose(t, await g.dweight!.toArray(), wantGrad.dw, tolerance[dtype], `${what}: dweight`);
            const frozen = linearCrossEntropyBackward(th, tw, tlab, got, { reduction, chunkSize, gradScale, needWeight: false });
            t.equal(frozen.dweight, undefined, 'needWeight: false returns no dweight');
            t.same(Buffer.from(await frozen.dh.toBytes()), Buffer.from(await g.dh.toBytes()), 'dh does not depend on needWeight');
          }
        }
      });
    }
  }
}

t.test('h and weight may have different dtypes; gradients take their own', async (t) => {
  const [rows, features, vocab, chunkSize] = [17, 33, 37, 8];
  const labels = labelsFor(rows, vocab);
  const o: LossOptionsRef = { ignoreIndex: -100, reduction: 'mean' };
  for (const [hDtype, wDtype] of [['f32', 'bf16'], ['bf16', 'f32']] as Array<[DType, DType]>) {
    const th = tensor(randomArray(rng, rows * features), [rows, features], { dtype: hDtype });
    const tw = tensor(randomArray(rng, vocab * features, 0.3), [vocab, features], { dtype: wDtype });
    const [h, w] = await Promise.all([th, tw].map(read));
    const tlab = tensor(labels, [rows]);
    const f = linearCrossEntropy(th, tw, tlab, { chunkSize });
    assertClose(t, await f.lse.toArray(), linearCrossEntropyRef(h, w, labels, features, vocab, o).lse, tolerance.f32, `h ${hDtype}, weight ${wDtype}: lse`);
    const g = linearCrossEntropyBackward(th, tw, tlab, f, { chunkSize });
    t.equal(g.dh.dtype, hDtype, 'dh has the dtype of h');
    t.equal(g.dweight!.dtype, wDtype, 'dweight has the dtype of the weight');
    const want = linearCrossEntropyBackwardRef(h, w, labels, features, vocab, o, 1);
    assertClose(t, await g.dh.toArray(), want.dh, tolerance[hDtype], 'dh');
    assertClose(t, await g.dweight!.toArray(), want.dw, tolerance[wDtype], 'dweight');
  }
});

t.test('all labels ignored: zero loss and gradients, no NaN', async (t) => {
  const [rows, features, vocab] = [17, 8, 37];
  const th = tensor(randomArray(rng, rows * features), [rows, features]);
  const tw = tensor(randomArray(rng, vocab * features), [vocab, features]);
  const tlab = tensor(new Int32Array(rows).fill(-100), [rows]);
  const f = linearCrossEntropy(th, tw, tlab, { chunkSize: 8 });
  t.equal(await f.loss.item(), 0, 'mean loss is 0');
  t.equal(await f.count.item(), 0, 'count is 0');
  const g = linearCrossEntropyBackward(th, tw, tlab, f, { chunkSize: 8 });
  t.ok((await g.dh.toArray()).every((v) => v === 0), 'dh is zero');
  t.ok((await g.dweight!.toArray()).every((v) => v === 0), 'dweight is zero');
});

t.test('no tokens: empty lse, zero loss, zero dweight', async (t) => {
  const [features, vocab] = [4, 5];
  const th = tensor([], [0, features], { dtype: 'f64' });
  const tw = tensor(randomArray(rng, vocab * features), [vocab, features]);
  const tlab = tensor(new Int32Array(0), [0]);
  const f = linearCrossEntropy(th, tw, tlab);
  t.equal(await f.loss.item(), 0);
  t.same(f.lse.shape, [0]);
  const g = linearCrossEntropyBackward(th, tw, tlab, f);
  t.ok((await g.dweight!.toArray()).every((v) => v === 0), 'dweight is zero');
});

for (const reduction of ['mean', 'sum'] as const) {
  t.test(`linearCrossEntropyBackward matches finite differences (f64, ${reduction})`, async (t) => {
    const [rows, features, vocab, chunkSize] = [5, 7, 37, 8];
    const inputs = { h: randomArray(rng, rows * features), w: randomArray(rng, vocab * features, 0.5) };
    const labels = tensor(labelsFor(rows, vocab), [rows]);
    const gradScale = rng.normal();
    const run = (v: Record<string, Float64Array>) =>
      linearCrossEntropy(tensor(v.h, [rows, features]), tensor(v.w, [vocab, features]), labels, { reduction, chunkSize });
    const loss = async (v: Record<string, Float64Array>) => gradScale * (await run(v).loss.item());
    const g = linearCrossEntropyBackward(tensor(inputs.h, [rows, features]), tensor(inputs.w, [vocab, features]), labels, run(inputs), {
      reduction,
      chunkSize,
      gradScale,
    });
    const analytic = { h: await g.dh.toArray(), w: await g.dweight!.toArray() };
    const result = await gradCheck(inputs, analytic, loss, rng, { samples: 16 });
    t.ok(result.worst.error < 1e-6, `worst error ${JSON.stringify(result.worst)} over ${result.checked} coordinates`);
  });
}

t.test('a label outside the vocabulary rejects the read-back with ERR_INDEX; the process goes on', async (t) => {
  const [rows, features, vocab] = [3, 4, 5];
  const th = tensor(randomArray(rng, rows * features), [rows, features]);
  const tw = tensor(randomArray(rng, vocab * features), [vocab, features]);
  const good = tensor(Int32Array.from([0, 4, -100]), [rows]);
  for (const bad of [vocab, -2]) {
    const labels = tensor(Int32Array.from([0, 1, bad]), [rows]);
    await t.rejects(linearCrossEntropy(th, tw, labels, { chunkSize: 2 }).loss.toArray(), { code: 'ERR_INDEX' }, `forward, label ${bad}`);
    const g = linearCrossEntropyBackward(th, tw, labels, linearCrossEntropy(th, tw, good), { chunkSize: 2 });
    await t.rejects(g.dweight!.toArray(), { code: 'ERR_INDEX' }, `backward, label ${bad}`);
  }
  t.ok(Number.isFinite(await linearCrossEntropy(th, tw, good).loss.item()), 'later ops still run');
});

t.test('bad arguments throw before anything is queued', async (t) => {
  const [rows, features, vocab] = [3, 4, 5];
  const th = tensor(randomArray(rng, rows * features), [rows, features]);
  const tw = tensor(randomArray(rng, vocab * features), [vocab, features]);
  const labels = tensor(Int32Array.from([0, 1, 2]), [rows]);
  const f = linearCrossEntropy(th, tw, labels);
  t.throws(() => linearCrossEntropy(th, tensor(randomArray(rng, vocab * 3), [vocab, 3]), labels), { code: 'ERR_SHAPE' }, 'C mismatch');
  t.throws(() => linearCrossEntropy(th, tw.reshape([vocab * features]), labels), { code: 'ERR_SHAPE' }, 'weight must be 2-D');
  t.throws(() => linearCrossEntropy(th.reshape([rows * features]), tw, labels), { code: 'ERR_SHAPE' }, 'h must be 2-D');
  t.throws(() => linearCrossEntropy(th, tensor(new Int32Array(vocab * features), [vocab, features]), labels), { code: 'ERR_DTYPE' }, 'weight must be floating');
  t.throws(() => linearCrossEntropy(tensor([], [rows, 0]), tensor([], [vocab, 0]), labels), { code: 'ERR_SHAPE' }, 'no features');
  t.throws(() => linearCrossEntropy(th, tw, tensor(Int32Array.from([0, 1]), [2])), { code: 'ERR_SHAPE' }, 'one label per row');
  t.throws(() => linearCrossEntropy(th, tw, labels, { chunkSize: 0 }), { code: 'ERR_ARGUMENT' }, 'chunkSize >= 1');
  t.throws(() => linearCrossEntropy(th, tw, labels, { reduction: 'none' as 'sum' }), { code: 'ERR_ARGUMENT' }, 'unknown reduction');
  t.throws(() => linearCrossEntropyBackward(th, tw, labels, { ...f, lse: tensor([0], [1]) }), { code: 'ERR_SHAPE' }, 'lse shape');
  t.throws(() => linearCrossEntropyBackward(th, tw, labels, { ...f, count: tensor([1, 1], [2]) }), { code: 'ERR_SHAPE' }, 'count shape');
  t.throws(() => linearCrossEntropyBackward(th, tw, labels, f, { chunkSize: 2.5 }), { code: 'ERR_ARGUMENT' }, 'chunkSize must be an integer');
});

t.test('linearCrossEntropy and its backward do not depend on the thread count', async (t) => {
  const one = trainDigestsWithThreads(1, 'linearCrossEntropy', seed);
  const two = trainDigestsWithThreads(2, 'linearCrossEntropy', seed);
  t.same(Object.keys(one).sort(), ['dh', 'dweight', 'loss', 'lse']);
  t.same(two, one, 'identical bytes with 1 and 2 threads');
});
