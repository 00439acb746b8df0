import t from 'tap';
import { embedding, embeddingBackward, swiglu } from '../../lib/ops';
import { DType, sync, tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { gradCheck, project } from '../helpers/gradcheck';
import { hostRng, randomArray, randomInts, testSeed } from '../helpers/random';
import { embeddingBackwardRef, embeddingRef } from '../reference/embedding';
import { digestsWithThreads } from './nn-determinism-child';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const read = async (x: { toArray(): Promise<ArrayLike<number>> }) => Float64Array.from(await x.toArray());

for (const [tokens, vocab, cols] of [[1, 1, 1], [3, 5, 3], [17, 17, 17], [65, 3, 65], [1000, 257, 33]]) {
  for (const dtype of ['f32', 'f64', 'bf16'] as DType[]) {
    t.test(`embedding ${dtype} T=${tokens} V=${vocab} C=${cols}`, async (t) => {
      const ids = randomInts(rng, tokens, 0, vocab);
      const tids = tensor(ids, [tokens]);
      const ttable = tensor(randomArray(rng, vocab * cols), [vocab, cols], { dtype });
      const tdout = tensor(randomArray(rng, tokens * cols), [tokens, cols], { dtype });
      const [table, dout] = await Promise.all([ttable, tdout].map(read));
      const out = embedding(tids, ttable);
      t.equal(out.dtype, dtype);
      t.same(out.shape, [tokens, cols]);
      t.same(await read(out), embeddingRef(ids, table, cols), 'rows are copied exactly');
      const dtable = embeddingBackward(tdout, tids, vocab);
      t.same(dtable.shape, [vocab, cols]);
      // bf16 rounds each accumulated row once; ids repeat ~T/V times
      const tol = dtype === 'bf16' ? tolerance.bf16 : tolerance[dtype];
      assertClose(t, await dtable.toArray(), embeddingBackwardRef(dout, ids, vocab, cols), tol, 'scatter-add');
      // a larger vocabulary than the ids use leaves the other rows at zero
      const wide = await embeddingBackward(tdout, tids, vocab + 3).toArray();
      t.same(Array.from(wide.slice(vocab * cols)), new Array(3 * cols).fill(0), 'untouched rows are zero');
    });
  }
}

t.test('embeddingBackward matches finite differences (f64)', async (t) => {
  const [tokens, vocab, cols] = [23, 7, 5];
  const ids = randomInts(rng, tokens, 0, vocab);
  const tids = tensor(ids, [tokens]);
  const w = randomArray(rng, tokens * cols);
  const loss = async (v: Record<string, Float64Array>) => project(await embedding(tids, tensor(v.table, [vocab, cols])).toArray(), w);
  const analytic = await embeddingBackward(tensor(w, [tokens, cols]), tids, vocab).toArray();
  const result = await gradCheck({ table: randomArray(rng, vocab * cols) }, { table: analytic }, loss, rng, { samples: 35 });
  t.ok(result.worst.error < 1e-8, `${result.checked} coordinates, worst ${JSON.stringify(result.worst)}`);
});

t.test('an out-of-range id rejects the read-back with ERR_INDEX and the process carries on', async (t) => {
  const table = tensor(randomArray(rng, 15), [5, 3], { dtype: 'f32' });
  for (const [bad, position] of [[7, 2], [-1, 0], [5, 3]]) {
    const ids = new Int32Array([0, 4, 1, 2]);
    ids[position] = bad;
    const tids = tensor(ids, [4]);
    const message = new RegExp(`^embedding: token id ${bad} at position ${position} is out of range \\[0, 5\\) for table f32\\[5,3\\]`);
    const out = embedding(tids, table);
    await t.rejects(out.toArray(), { code: 'ERR_INDEX', message }, `id ${bad} at ${position}`);
    // the failure travels to tensors computed from the bad output
    await t.rejects(swiglu(out, out).toArray(), { code: 'ERR_INDEX', message });
    await t.rejects(sync(), { code: 'ERR_INDEX' }, 'sync reports the first error since the last sync');
    const grad = embeddingBackward(tensor(randomArray(rng, 12), [4, 3], { dtype: 'f32' }), tids, 5);
    await t.rejects(grad.toArray(), { code: 'ERR_INDEX', message: new RegExp(`^embeddingBackward: token id ${bad} at position ${position}`) });
    await sync().catch(() => undefined);
  }
  const ok = embedding(tensor(new Int32Array([4, 0]), [2]), table);
  t.same(await read(ok), embeddingRef([4, 0], await read(table), 3), 'later ops still run');
  await sync();
});

t.test('embeddingBackward does not depend on the thread count', async (t) => {
  const one = digestsWithThreads(1, 'embedding', seed);
  const two = digestsWithThreads(2, 'embedding', seed);
  t.same(Object.keys(one).sort(), ['dtableBf16', 'dtableF32']);
  t.same(two, one, 'identical bytes with 1 and 2 threads');
});

t.test('embedding rejects bad inputs', async (t) => {
  const ids = tensor(new Int32Array([0, 1]), [2]);
  const table = tensor(randomArray(rng, 6), [3, 2], { dtype: 'f32' });
  const dout = tensor(randomArray(rng, 4), [2, 2], { dtype: 'f32' });
  const throwsCode = (fn: () => unknown, code: string, message: RegExp) => t.throws(fn, { code, message });
  throwsCode(() => embedding(tensor([0, 1], [2]), table), 'ERR_DTYPE', /embedding: ids must be i32/);
  throwsCode(() => embedding(tensor(new Int32Array(2), [1, 2]), table), 'ERR_SHAPE', /ids must have rank 1/);
  throwsCode(() => embedding(ids, tensor(randomArray(rng, 3), [3])), 'ERR_SHAPE', /table must have rank 2/);
  throwsCode(() => embedding(ids, tensor(new Int32Array(6), [3, 2])), 'ERR_DTYPE', /table must be a floating-point/);
  const B = 'embeddingBackward';
  throwsCode(() => embeddingBackward(dout, ids, 0), 'ERR_ARGUMENT', new RegExp(`${B}: vocabSize must be an integer in \\[1, 2\\^31\\]`));
  throwsCode(() => embeddingBackward(dout, ids, 2 ** 31 + 1), 'ERR_ARGUMENT', /vocabSize/);
  throwsCode(() => embeddingBackward(dout, ids, 2.5), 'ERR_ARGUMENT', /vocabSize' must be an integer/);
  throwsCode(() => embeddingBackward(dout, tensor(new Int32Array(3), [3]), 3), 'ERR_SHAPE', /one id per row of dout/);
  throwsCode(() => embeddingBackward(tensor(randomArray(rng, 2), [2], { dtype: 'f32' }), ids, 3), 'ERR_SHAPE', /dout must have rank 2/);
  throwsCode(() => embeddingBackward(tensor(new Int32Array(4), [2, 2]), ids, 3), 'ERR_DTYPE', /dout must be a floating-point/);
  throwsCode(() => embeddingBackward(dout, tensor([0, 1], [2]), 3), 'ERR_DTYPE', /ids must be i32/);
});
