import t from 'tap';
import { crossEntropy, crossEntropyBackward, add } from '../../lib/ops';
import { DType, tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { gradCheck } from '../helpers/gradcheck';
import { hostRng, randomArray, testSeed } from '../helpers/random';
import { crossEntropyBackwardRef, crossEntropyRef, LossOptionsRef } from '../reference/cross-entropy';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const read = async (x: { toArray(): Promise<ArrayLike<number>> }) => Float64Array.from(await x.toArray());

/** Labels in [0, vocab) with about a quarter set to ignoreIndex. */
function labelsFor(rows: number, vocab: number, ignoreIndex = -100): Int32Array {
  return Int32Array.from({ length: rows }, () => (rng.uniform() < 0.25 ? ignoreIndex : rng.int(vocab)));
}

// lse, loss and count are computed in f32 from the stored logits, whatever their dtype.
const statsTol: Record<string, { atol: number; rtol: number }> = { f64: tolerance.f64, f32: tolerance.f32, bf16: tolerance.f32 };

for (const rows of [1, 3, 17, 65]) {
  for (const vocab of [5, 37, 1000]) {
    for (const dtype of (rows === 17 ? ['f32', 'f64', 'bf16'] : ['f32']) as DType[]) {
      t.test(`crossEntropy ${dtype} [${rows}, ${vocab}]`, async (t) => {
        const tl = tensor(randomArray(rng, rows * vocab, 3), [rows, vocab], { dtype });
        const logits = await read(tl);
        const labels = labelsFor(rows, vocab);
        const tlab = tensor(labels, [rows]);
        for (const reduction of ['mean', 'sum'] as const) {
          const o: LossOptionsRef = { ignoreIndex: -100, reduction };
          const want = crossEntropyRef(logits, labels, vocab, o);
          const got = crossEntropy(tl, tlab, { reduction });
          t.equal(got.loss.dtype, dtype === 'f64' ? 'f64' : 'f32', 'loss dtype');
          t.same(got.lse.shape, [rows], 'lse has one value per row');
          assertClose(t, await got.loss.toArray(), [want.loss], statsTol[dtype], `${reduction} loss`);
          assertClose(t, await got.lse.toArray(), want.lse, statsTol[dtype], 'lse');
          t.equal(await got.count.item(), want.count, 'count of non-ignored labels');

          const gradScale = 0.5 + rng.uniform();
          const dlogits = crossEntropyBackward(tl, tlab, got, { reduction, gradScale });
          t.equal(dlogits.dtype, dtype, 'dlogits keeps the logits dtype');
          const wantGrad = crossEntropyBackwardRef(logits, labels, vocab, o, gradScale);
          assertClose(t, await dlogits.toArray(), wantGrad, tolerance[dtype], `${reduction} dlogits`);
        }
      });
    }
  }
}

t.test('all labels ignored: zero loss, zero count, zero gradient, no NaN', async (t) => {
  const [rows, vocab] = [17, 37];
  const tl = tensor(randomArray(rng, rows * vocab), [rows, vocab]);
  const tlab = tensor(new Int32Array(rows).fill(-100), [rows]);
  for (const reduction of ['mean', 'sum'] as const) {
    const f = crossEntropy(tl, tlab, { reduction });
    t.equal(await f.loss.item(), 0, `${reduction} loss is 0`);
    t.equal(await f.count.item(), 0, 'count is 0');
    const d = await crossEntropyBackward(tl, tlab, f, { reduction }).toArray();
    t.ok(d.every((v) => v === 0), 'gradient is all zeros');
  }
});

t.test('a custom ignoreIndex inside the vocabulary is ignored', async (t) => {
  const [rows, vocab, ignoreIndex] = [17, 5, 2];
  const logits = randomArray(rng, rows * vocab);
  const labels = labelsFor(rows, vocab, ignoreIndex);
  labels[0] = ignoreIndex;
  const o: LossOptionsRef = { ignoreIndex, reduction: 'mean' };
  const tl = tensor(logits, [rows, vocab], { dtype: 'f64' });
  const f = crossEntropy(tl, tensor(labels, [rows]), { ignoreIndex });
  assertClose(t, [await f.loss.item()], [crossEntropyRef(logits, labels, vocab, o).loss], tolerance.f64, 'loss');
  const d = await crossEntropyBackward(tl, tensor(labels, [rows]), f, { ignoreIndex }).toArray();
  assertClose(t, d, crossEntropyBackwardRef(logits, labels, vocab, o, 1), tolerance.f64, 'dlogits');
  t.ok(d.slice(0, vocab).every((v) => v === 0), 'the ignored row has no gradient');
});

for (const [rows, vocab] of [[3, 5], [17, 37]]) {
  for (const reduction of ['mean', 'sum'] as const) {
    t.test(`crossEntropyBackward matches finite differences (f64 [${rows}, ${vocab}], ${reduction})`, async (t) => {
      const inputs = { logits: randomArray(rng, rows * vocab, 2) };
      const labels = tensor(labelsFor(rows, vocab), [rows]);
      const gradScale = rng.normal();
      const loss = async (v: Record<string, Float64Array>) =>
        gradScale * (await crossEntropy(tensor(v.logits, [rows, vocab]), labels, { reduction }).loss.item());
      const tl = tensor(inputs.logits, [rows, vocab]);
      const analytic = await crossEntropyBackward(tl, labels, crossEntropy(tl, labels, { reduction }), { reduction, gradScale }).toArray();
      const result = await gradCheck(inputs, { logits: analytic }, loss, rng, { samples: 20 });
      t.ok(result.worst.error < 1e-6, `worst error ${JSON.stringify(result.worst)} over ${result.checked} coordinates`);
    });
  }
}

t.test('a label outside the vocabulary rejects the read-back with ERR_INDEX; the process goes on', async (t) => {
  const [rows, vocab] = [3, 5];
  const tl = tensor(randomArray(rng, rows * vocab), [rows, vocab]);
  for (const bad of [vocab, -1, 1 << 30]) {
    const labels = tensor(Int32Array.from([0, bad, 1]), [rows]);
    const f = crossEntropy(tl, labels);
    await t.rejects(f.loss.toArray(), { code: 'ERR_INDEX' }, `forward, label ${bad}`);
    await t.rejects(f.lse.toArray(), { code: 'ERR_INDEX' }, 'every output is invalid');
    const good = crossEntropy(tl, tensor(Int32Array.from([0, 4, 1]), [rows]));
    const d = crossEntropyBackward(tl, labels, good);
    await t.rejects(d.toArray(), { code: 'ERR_INDEX' }, `backward, label ${bad}`);
    // A later op consuming the invalid tensor reports the original cause.
    await t.rejects(add(d, d).toArray(), { code: 'ERR_INDEX' }, 'the error travels to dependent tensors');
  }
  const ok = crossEntropy(tl, tensor(Int32Array.from([0, 4, 1]), [rows]));
  t.ok(Number.isFinite(await ok.loss.item()), 'later ops still run');
});

t.test('bad arguments throw before anything is queued', async (t) => {
  const [rows, vocab] = [3, 5];
  const tl = tensor(randomArray(rng, rows * vocab), [rows, vocab]);
  const labels = tensor(Int32Array.from([0, 1, 2]), [rows]);
  const f = crossEntropy(tl, labels);
  t.throws(() => crossEntropy(tl.reshape([rows * vocab]), labels), { code: 'ERR_SHAPE' }, 'logits must be 2-D');
  t.throws(() => crossEntropy(tensor(new Int32Array(rows * vocab), [rows, vocab]), labels), { code: 'ERR_DTYPE' }, 'logits must be floating');
  t.throws(() => crossEntropy(tensor([], [rows, 0]), labels), { code: 'ERR_SHAPE' }, 'empty vocabulary');
  t.throws(() => crossEntropy(tl, tensor([0, 1, 2], [rows])), { code: 'ERR_DTYPE' }, 'labels must be i32');
  t.throws(() => crossEntropy(tl, tensor(Int32Array.from([0, 1]), [2])), { code: 'ERR_SHAPE' }, 'one label per row');
  t.throws(() => crossEntropy(tl, labels, { reduction: 'avg' as 'mean' }), { code: 'ERR_ARGUMENT' }, 'unknown reduction');
  t.throws(() => crossEntropy(tl, labels, { ignoreIndex: 0.5 }), { code: 'ERR_ARGUMENT' }, 'ignoreIndex must be an integer');
  t.throws(() => crossEntropyBackward(tl, labels, { ...f, lse: tensor([0, 0], [2]) }), { code: 'ERR_SHAPE' }, 'lse shape');
  t.throws(() => crossEntropyBackward(tl, labels, { ...f, count: tensor([1, 1], [2]) }), { code: 'ERR_SHAPE' }, 'count shape');
  t.throws(() => crossEntropyBackward(tl, labels, f, { gradScale: NaN }), { code: 'ERR_ARGUMENT' }, 'gradScale must be finite');
  t.throws(() => crossEntropyBackward(tl, labels, { ...f, lse: labels }), { code: 'ERR_DTYPE' }, 'lse must be floating');
});
