// The host-side batch check behind toDevice(batch, device, vocabSize): it must refuse exactly what
// the device-side index checks refuse (they are skipped for batches it passed), naming the field
// and position, and a checked batch must train exactly as an unchecked one.
import t from 'tap';
import { Batch, IGNORE_INDEX } from '../../lib/data/batch';
import { embedding } from '../../lib/ops';
import { tensor } from '../../lib/tensor';
import { checkBatch, toDevice } from '../../lib/train/batches';
import { hostRng, randomArray, randomInts, testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

/** A random packed batch of 1-4 documents over a vocabulary of V ids, some labels ignored. */
function randomBatch(V: number): Batch {
  const lengths = Array.from({ length: 1 + rng.int(4) }, () => 1 + rng.int(9));
  const T = lengths.reduce((a, b) => a + b, 0);
  const cuSeqlens = Int32Array.from(lengths.reduce((cu, n) => [...cu, cu[cu.length - 1] + n], [0]));
  const labels = randomInts(rng, T, 0, V);
  for (let i = 0; i < T; i++) if (rng.uniform() < 0.3) labels[i] = IGNORE_INDEX;
  const positionIds = new Int32Array(T);
  lengths.forEach((n, d) => {
    for (let i = 0; i < n; i++) positionIds[cuSeqlens[d] + i] = i;
  });
  return { inputIds: randomInts(rng, T, 0, V), labels, positionIds, cuSeqlens, numLabelTokens: labels.filter((l) => l !== IGNORE_INDEX).length, numDocuments: lengths.length };
}

t.test('a valid batch passes and toDevice marks it checked', async (t) => {
  const V = 5 + rng.int(50);
  const batch = randomBatch(V);
  t.doesNotThrow(() => checkBatch(batch, V));
  const checked = toDevice(batch, 'cpu', V);
  t.equal(checked.indicesChecked, true);
  t.same(Array.from(await checked.inputIds.toArray()), Array.from(batch.inputIds));
  t.same(Array.from(await checked.cuSeqlens.toArray()), Array.from(batch.cuSeqlens));
  t.equal(toDevice(batch, 'cpu').indicesChecked, false, 'without a vocabulary size nothing is checked or claimed');
});

t.test('each bad field is refused with its name and position', async (t) => {
  const V = 5 + rng.int(50);
  const cases: Array<[string, (b: Batch) => void, RegExp, string]> = [
    ['id = V', (b) => (b.inputIds[b.inputIds.length - 1] = V), /inputIds\[\d+\] = \d+ is outside the vocabulary \[0, \d+\)/, 'ERR_INDEX'],
    ['negative id', (b) => (b.inputIds[0] = -1), /inputIds\[0\] = -1/, 'ERR_INDEX'],
    ['label = V', (b) => (b.labels[0] = V), /labels\[0\] = \d+ is neither -100 nor in/, 'ERR_INDEX'],
    ['label -1', (b) => (b.labels[0] = -1), /labels\[0\] = -1/, 'ERR_INDEX'],
    ['cuSeqlens past T', (b) => (b.cuSeqlens[b.cuSeqlens.length - 1] += 1), /cuSeqlens must run from 0 to the token count/, 'ERR_INDEX'],
    ['cuSeqlens not from 0', (b) => (b.cuSeqlens[0] = 1), /cuSeqlens must run from 0/, 'ERR_INDEX'],
    ['labels short', (b) => (b.labels = b.labels.subarray(1)), /labels has \d+ entries for \d+ tokens/, 'ERR_SHAPE'],
  ];
  for (const [name, spoil, message, code] of cases) {
    const batch = randomBatch(V);
    spoil(batch);
    t.throws(() => checkBatch(batch, V), { message, code }, name);
    t.throws(() => toDevice(batch, 'cpu', V), { code }, `${name}: toDevice refuses it before any upload`);
  }
  const batch = randomBatch(V);
  batch.inputIds = Int32Array.from([...batch.inputIds, 0, 0]);
  batch.labels = Int32Array.from([...batch.labels, 0, 0]);
  batch.positionIds = Int32Array.from([...batch.positionIds, 0, 0]);
  batch.cuSeqlens = Int32Array.from([0, batch.inputIds.length, batch.inputIds.length - 2]);
  t.throws(() => checkBatch(batch, V), { message: /cuSeqlens/, code: 'ERR_INDEX' }, 'decreasing cuSeqlens');
});

t.test('the CPU checks indices even when a caller says they were checked', async (t) => {
  const table = tensor(randomArray(rng, 4 * 3), [4, 3]);
  const ids = tensor(Int32Array.from([1, 4]), [2], { dtype: 'i32' });
  await t.rejects(async () => embedding(ids, table, { indicesChecked: true }).toArray(), { code: 'ERR_INDEX' });
});
