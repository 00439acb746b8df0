import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { CheckpointReader, INDEX_FILE, SINGLE_FILE, writeCheckpoint } from '../../../lib/model/io/checkpoint';
import { TensorEntry } from '../../../lib/model/io/safetensors-writer';
import { hostRng, randomArray, testSeed } from '../../helpers/random';
import { bytesOf, decodeFile, encodeFile, tempDir } from './st-bytes';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

function randomEntries(count: number): Array<TensorEntry & { data: Float32Array }> {
  return Array.from({ length: count }, (_, i) => {
    const shape = [1 + rng.int(6), 1 + rng.int(6)];
    return { name: `model.layers.${i}.w`, dtype: 'F32' as const, shape, data: Float32Array.from(randomArray(rng, shape[0] * shape[1])) };
  });
}

t.test('shards by size, writes an index, and reads every tensor back', async (t) => {
  const dir = tempDir(t);
  const entries = randomEntries(8 + rng.int(8));
  const maxShardBytes = 64 + rng.int(100);
  const written = await writeCheckpoint(dir, entries, { maxShardBytes });
  t.comment(`max shard ${maxShardBytes} bytes: ${written.join(' ')}`);

  // Expected grouping, computed here: fill a shard until the next tensor would overflow it.
  const groups: number[][] = [[]];
  let bytes = 0;
  entries.forEach((e, i) => {
    if (groups[groups.length - 1].length > 0 && bytes + e.data.byteLength > maxShardBytes) {
      groups.push([]);
      bytes = 0;
    }
    groups[groups.length - 1].push(i);
    bytes += e.data.byteLength;
  });
  const n = groups.length;
  t.ok(n > 1, 'more than one shard');
  const shardNames = groups.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
  t.same(written, [...shardNames, INDEX_FILE]);
  t.same(fs.readdirSync(dir).sort(), [...shardNames, INDEX_FILE].sort(), 'nothing else in the directory');

  const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX_FILE), 'utf8'));
  t.equal(index.metadata.total_size, entries.reduce((s, e) => s + e.data.byteLength, 0));
  groups.forEach((group, s) => {
    const decoded = decodeFile(fs.readFileSync(path.join(dir, shardNames[s])));
    t.same(decoded.header.__metadata__, { format: 'pt' }, 'HF-style metadata');
    for (const i of group) {
      t.equal(index.weight_map[entries[i].name], shardNames[s]);
      t.same(Uint8Array.from(decoded.data(entries[i].name)), bytesOf(entries[i].data));
    }
  });

  const reader = await CheckpointReader.open(dir);
  t.teardown(() => reader.close());
  t.same(reader.names().sort(), entries.map((e) => e.name).sort());
  for (const e of entries) {
    t.same(reader.shapes().get(e.name), e.shape);
    t.same(Array.from(await (await reader.readTensor(e.name)).toArray()), Array.from(e.data), `${e.name} values`);
  }
  t.match(reader.info(entries[0].name).file, /model-00001-of-/);
  await t.rejects(reader.readBytes('lm_head.weight'), { code: 'ERR_IO', message: /index\.json: no tensor 'lm_head\.weight'/ });
});

t.test('rewriting removes the other layout and stale shards', async (t) => {
  const dir = tempDir(t);
  const entries = randomEntries(6);
  await writeCheckpoint(dir, entries, { maxShardBytes: 1 });
  t.equal(fs.readdirSync(dir).length, 7, 'one shard per tensor plus the index');
  await writeCheckpoint(dir, entries.slice(0, 4), { maxShardBytes: 1 });
  t.same(fs.readdirSync(dir).sort(), [INDEX_FILE, ...[1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`)].sort());
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
  await writeCheckpoint(dir, entries.slice(0, 2));
  t.same(fs.readdirSync(dir).sort(), [SINGLE_FILE, 'notes.txt'], 'single file; unrelated files kept');
  const reader = await CheckpointReader.open(dir);
  t.teardown(() => reader.close());
  t.same(reader.names(), [entries[0].name, entries[1].name]);
});

t.test('damaged indexes and missing weights are refused clearly', async (t) => {
  const f32 = (n: number) => ({ dtype: 'F32', shape: [n], bytes: new Uint8Array(4 * n) });
  const setup = (weightMap: unknown, shards: Record<string, Buffer>): string => {
    const dir = tempDir(t);
    for (const [name, bytes] of Object.entries(shards)) fs.writeFileSync(path.join(dir, name), bytes);
    fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    return dir;
  };
  const s1 = encodeFile({ a: f32(2), b: f32(3) });
  const s2 = encodeFile({ c: f32(1) });

  const ok = await CheckpointReader.open(setup({ a: 's1', b: 's1', c: 's2' }, { s1, s2 }));
  t.same(ok.names().sort(), ['a', 'b', 'c'], 'a consistent index opens');
  await ok.close();

  const cases: Array<[string, string, RegExp]> = [
    ['missing shard', setup({ a: 's1', b: 's1', c: 's3' }, { s1, s2 }), /s3: cannot open: ENOENT/],
    ['wrong shard', setup({ a: 's1', b: 's2', c: 's2' }, { s1, s2 }), /tensor 'b' is mapped to s2, which does not hold it/],
    ['unlisted tensor', setup({ a: 's1', c: 's2' }, { s1, s2 }), /weight_map does not list: b/],
    ['path outside the directory', setup({ a: '../s1' }, { s1 }), /tensor 'a' maps to "\.\.\/s1", not a file name/],
    ['tensor in two shards', setup({ a: 's1', b: 's1', c: 's2' }, { s1, s2: encodeFile({ a: f32(1), c: f32(1) }) }), /tensor 'a' is in both .*s1 and .*s2/],
    ['no weight_map', setup(undefined, {}), /no "weight_map" object/],
    ['damaged shard', setup({ a: 's1', b: 's1' }, { s1: s1.subarray(0, s1.length - 2) }), /s1: not a valid safetensors file/],
  ];
  for (const [label, dir, expect] of cases) {
    await t.rejects(CheckpointReader.open(dir), { code: 'ERR_IO', message: expect }, label);
  }
  const badJson = tempDir(t);
  fs.writeFileSync(path.join(badJson, INDEX_FILE), '{"weight_map": ');
  await t.rejects(CheckpointReader.open(badJson), { code: 'ERR_IO', message: /index\.json: cannot read the index/ });
  const empty = tempDir(t);
  await t.rejects(CheckpointReader.open(empty), { code: 'ERR_IO', message: /no weights found: expected model\.safetensors or model\.safetensors\.index\.json/ });
});
