import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { isSeqtuneError } from '../../../lib/errors';
import { SafetensorsFile } from '../../../lib/model/io/safetensors';
import { tensorEntry, TensorEntry, writeSafetensors } from '../../../lib/model/io/safetensors-writer';
import { cast } from '../../../lib/ops';
import { Tensor, tensor } from '../../../lib/tensor';
import { hostRng, randomArray, randomInts, testSeed } from '../../helpers/random';
import { bf16ToNumber, bytesOf, decodeFile, encodeFile, halfToNumber, tempDir } from './st-bytes';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

function randomDims(rank: number): number[] {
  return Array.from({ length: rank }, () => 1 + rng.int(5));
}

t.test('reads a file built by hand from the format description, every dtype', async (t) => {
  const dir = tempDir(t);
  const f32 = Float32Array.from(randomArray(rng, 6));
  const f64 = randomArray(rng, 2);
  const i32 = randomInts(rng, 3, -1000, 1000);
  const bf16 = Uint16Array.from({ length: 4 }, () => rng.int(0x7f80)); // finite positive bf16 bit patterns
  const f16 = Uint16Array.from({ length: 5 }, () => rng.int(0x7c00));
  const i64 = new BigInt64Array([BigInt(rng.int(1 << 30)) * 1000n, -5n]);
  const u8 = Uint8Array.from({ length: 3 }, () => rng.int(256));
  const file = path.join(dir, 'hand.safetensors');
  fs.writeFileSync(
    file,
    encodeFile(
      {
        'a.f32': { dtype: 'F32', shape: [2, 3], bytes: bytesOf(f32) },
        'b.bf16': { dtype: 'BF16', shape: [4], bytes: bytesOf(bf16) },
        'c.i32': { dtype: 'I32', shape: [3, 1], bytes: bytesOf(i32) },
        'd.f64': { dtype: 'F64', shape: [2], bytes: bytesOf(f64) },
        'e.i64': { dtype: 'I64', shape: [2], bytes: bytesOf(i64) },
        'f.u8': { dtype: 'U8', shape: [3], bytes: u8 },
        'g.f16': { dtype: 'F16', shape: [5], bytes: bytesOf(f16) },
        'h.empty': { dtype: 'F32', shape: [0, 4], bytes: new Uint8Array(0) },
      },
      { format: 'pt', note: 'hand made' },
    ),
  );
  const st = await SafetensorsFile.open(file);
  t.teardown(() => st.close());
  t.same(st.metadata, { format: 'pt', note: 'hand made' });
  t.same(st.names().sort(), ['a.f32', 'b.bf16', 'c.i32', 'd.f64', 'e.i64', 'f.u8', 'g.f16', 'h.empty']);
  t.same(st.info('a.f32').shape, [2, 3]);

  const a = await st.readTensor('a.f32');
  t.same([a.dtype, ...a.shape], ['f32', 2, 3]);
  t.same(Array.from(await a.toArray()), Array.from(f32));
  t.same(Array.from(await (await st.readTensor('d.f64')).toArray()), Array.from(f64));
  t.same(Array.from(await (await st.readTensor('c.i32')).toArray()), Array.from(i32));
  const b = await st.readTensor('b.bf16');
  t.equal(b.dtype, 'bf16');
  t.same(new Uint16Array(await b.toBytes()), bf16, 'bf16 bits are kept exactly');
  t.same(Array.from(await b.toArray()), Array.from(bf16, bf16ToNumber), 'bf16 values');
  const g = await st.readTensor('g.f16');
  t.same(Array.from(await g.toArray()), Array.from(f16, halfToNumber), 'f16 values');
  const asF32 = await st.readTensor('b.bf16', { dtype: 'f32' });
  t.same([asF32.dtype, Array.from(await asF32.toArray())], ['f32', Array.from(bf16, bf16ToNumber)], 'converted on load');
  t.same((await st.readTensor('h.empty')).shape, [0, 4]);

  t.same(new BigInt64Array(bytesOf(await st.readBytes('e.i64')).slice().buffer), i64, 'I64 readable as bytes');
  t.same(Uint8Array.from(await st.readBytes('f.u8')), u8);
  await t.rejects(st.readTensor('e.i64'), { code: 'ERR_DTYPE', message: /hand\.safetensors.*e\.i64.*readBytes/ });
  await t.rejects(st.readBytes('nope'), { code: 'ERR_IO', message: /hand\.safetensors: no tensor 'nope'/ });
});

t.test('the writer produces what the format description says', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'out.safetensors');
  const specs = [
    { name: 'w', dtype: 'F32' as const, data: Float32Array.from(randomArray(rng, 12)), shape: [3, 4] },
    { name: 'odd', dtype: 'U8' as const, data: Uint8Array.from({ length: 3 }, () => rng.int(256)), shape: [3] },
    { name: 'i', dtype: 'I32' as const, data: randomInts(rng, 5, -9, 9), shape: [5] },
  ];
  await writeSafetensors(file, specs, { format: 'pt' });
  const decoded = decodeFile(fs.readFileSync(file));
  t.equal(decoded.headerLength % 8, 0, 'header padded so the data starts 8-byte aligned');
  t.same(decoded.header.__metadata__, { format: 'pt' });
  let offset = 0;
  for (const s of specs) {
    const h = decoded.header[s.name];
    t.same([h.dtype, h.shape, h.data_offsets], [s.dtype, s.shape, [offset, offset + s.data.byteLength]], `${s.name} header entry`);
    t.same(Uint8Array.from(decoded.data(s.name)), bytesOf(s.data), `${s.name} bytes`);
    offset += s.data.byteLength;
  }
  t.equal(fs.statSync(file).size, 8 + decoded.headerLength + offset, 'no trailing bytes');
});

t.test('random tensors round-trip through write and read, f32/f64/i32/bf16/f16', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'rt.safetensors');
  const tensors: Record<string, Tensor> = {};
  for (let i = 0; i < 10; i++) {
    const shape = randomDims(1 + rng.int(3));
    const n = shape.reduce((a, b) => a * b, 1);
    const kind = ['f32', 'f64', 'i32', 'bf16', 'f16'][rng.int(5)];
    tensors[`t${i}.${kind}`] =
      kind === 'i32'
        ? tensor(randomInts(rng, n, -1e6, 1e6), shape)
        : kind === 'f64'
          ? tensor(randomArray(rng, n), shape)
          : cast(tensor(randomArray(rng, n), shape), kind as 'f32' | 'bf16' | 'f16');
  }
  await writeSafetensors(file, Object.entries(tensors).map(([name, x]) => tensorEntry(name, x)));
  const st = await SafetensorsFile.open(file);
  t.teardown(() => st.close());
  for (const [name, x] of Object.entries(tensors)) {
    const y = await st.readTensor(name);
    t.same([y.dtype, y.shape], [x.dtype, x.shape], `${name} dtype and shape`);
    t.same(new Uint8Array(await y.toBytes()), new Uint8Array(await x.toBytes()), `${name} bytes`);
  }
});

t.test('a failed write leaves the previous file and no temporary files', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'keep.safetensors');
  const first = Float32Array.from(randomArray(rng, 8));
  await writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [8], data: first }]);
  const before = fs.readFileSync(file);
  const entries: TensorEntry[] = [
    { name: 'x', dtype: 'F32', shape: [8], data: Float32Array.from(randomArray(rng, 8)) },
    {
      name: 'broken',
      dtype: 'F32',
      shape: [4],
      data: () => {
        throw new Error('producer failed');
      },
    },
  ];
  await t.rejects(writeSafetensors(file, entries), { code: 'ERR_IO', message: /keep\.safetensors: tensor 'broken': producer failed/ });
  t.same(fs.readFileSync(file), before, 'old file untouched');
  t.same(fs.readdirSync(dir), ['keep.safetensors'], 'temporary file removed');

  await t.rejects(writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [8], data: new Float32Array(7) }]), {
    code: 'ERR_SHAPE',
    message: /keep\.safetensors: tensor 'x': 28 bytes given but F32\[8\] needs 32/,
  });
  await t.rejects(writeSafetensors(file, [{ name: 'x', dtype: 'BF16', shape: [2], data: tensor([1, 2], [2]) }]), {
    code: 'ERR_SHAPE',
    message: /tensor 'x': f32\[2\] on cpu was given but the entry declares BF16\[2\]/,
  });
  await t.rejects(writeSafetensors(file, [tensorEntry('d', tensor([1], [1])), tensorEntry('d', tensor([2], [1]))]), { message: /'d' is listed twice/ });
  await t.rejects(writeSafetensors(path.join(dir, 'no/such/dir/x.safetensors'), []), { code: 'ERR_IO', message: /no\/such\/dir/ });
  t.same(fs.readFileSync(file), before, 'still untouched');
});

t.test('producers run one at a time, in order, and their tensors are disposed once written', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'stream.safetensors');
  let live = 0;
  let maxLive = 0;
  const produced: Tensor[] = [];
  const values = Array.from({ length: 6 }, () => Float32Array.from(randomArray(rng, 16)));
  const entries: TensorEntry[] = values.map((v, i) => ({
    name: `p${i}`,
    dtype: 'F32',
    shape: [4, 4],
    data: async () => {
      t.ok(i === 0 || produced[i - 1].disposed, `p${i - 1} was disposed before p${i} was produced`);
      live++;
      maxLive = Math.max(maxLive, live);
      const x = tensor(v, [4, 4]);
      produced.push(x);
      await new Promise((r) => setTimeout(r, 1));
      live--;
      return x;
    },
  }));
  const direct = tensor(Float32Array.from(randomArray(rng, 3)), [3]);
  await writeSafetensors(file, [...entries, tensorEntry('direct', direct)]);
  t.equal(maxLive, 1);
  t.ok(produced.every((x) => x.disposed), 'produced tensors disposed');
  t.notOk(direct.disposed, "the caller's tensor is left alone");
  const st = await SafetensorsFile.open(file);
  t.teardown(() => st.close());
  for (let i = 0; i < values.length; i++) t.same(Array.from(await (await st.readTensor(`p${i}`)).toArray()), Array.from(values[i]));
});

t.test('open errors name the file', async (t) => {
  const dir = tempDir(t);
  const missing = path.join(dir, 'missing.safetensors');
  await t.rejects(SafetensorsFile.open(missing), { code: 'ERR_IO', message: new RegExp(`${missing}: cannot open: ENOENT`) });
  const error = await SafetensorsFile.open(dir).then(() => undefined, (e: unknown) => e);
  t.ok(isSeqtuneError(error, 'ERR_IO') && error.message.startsWith(dir), `a directory: ${String(error)}`);
});
