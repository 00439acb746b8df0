/**
 * Random and damaged files: opening and reading must either work or throw a SeqtuneError naming
 * the file; anything else (a TypeError, a RangeError from Buffer, a hang) is a bug. Damage that
 * certainly breaks the format must be refused, with the reason in the message.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { isSeqtuneError } from '../../../lib/errors';
import { SafetensorsFile } from '../../../lib/model/io/safetensors';
import { hostRng, testSeed } from '../../helpers/random';
import { encodeFile, encodeWithHeader, RawTensor, tempDir } from './st-bytes';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const SIZES: Record<string, number> = { F32: 4, F64: 8, BF16: 2, F16: 2, I32: 4, I64: 8, U8: 1 };

function randomFileTensors(): Record<string, RawTensor> {
  const tensors: Record<string, RawTensor> = {};
  const count = 1 + rng.int(4);
  for (let i = 0; i < count; i++) {
    const dtype = Object.keys(SIZES)[rng.int(7)];
    const shape = Array.from({ length: rng.int(3) }, () => 1 + rng.int(4));
    const n = shape.reduce((a, b) => a * b, 1) * SIZES[dtype];
    tensors[`layer.${i}.w`] = { dtype, shape, bytes: Uint8Array.from({ length: n }, () => rng.int(256)) };
  }
  return tensors;
}

/** Opens and reads everything; returns the error (undefined when the file was accepted). */
async function tryFile(file: string): Promise<unknown> {
  let st: SafetensorsFile | undefined;
  try {
    st = await SafetensorsFile.open(file);
    for (const name of st.names()) {
      const info = st.info(name);
      if (['I64', 'U8'].includes(info.dtype)) await st.readBytes(name);
      else (await st.readTensor(name)).dispose();
    }
    return undefined;
  } catch (error) {
    return error;
  } finally {
    await st?.close();
  }
}

function checkError(t: Test, error: unknown, file: string, label: string, expect?: RegExp): void {
  const ok = isSeqtuneError(error) && error.message.includes(file) && (!expect || expect.test(error.message));
  t.ok(ok, `${label}: ${error instanceof Error ? `${error.name} ${error.message}` : String(error)}`);
}

t.test('random bytes', async (t) => {
  const dir = tempDir(t);
  for (let i = 0; i < 150; i++) {
    const n = rng.int(120);
    const bytes = Buffer.from(Uint8Array.from({ length: n }, () => rng.int(256)));
    // Half of them get a plausible header length so parsing goes past the first check.
    if (n >= 8 && i % 2 === 0) bytes.writeBigUInt64LE(BigInt(rng.int(n - 7)));
    const file = path.join(dir, `random-${i}.safetensors`);
    fs.writeFileSync(file, bytes);
    const error = await tryFile(file);
    if (error !== undefined) checkError(t, error, file, `random file ${i} (${n} bytes)`);
  }
});

t.test('random byte flips in valid files never crash', async (t) => {
  const dir = tempDir(t);
  for (let i = 0; i < 200; i++) {
    const bytes = encodeFile(randomFileTensors(), { format: 'pt' });
    const flips = 1 + rng.int(3);
    const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
    for (let k = 0; k < flips; k++) bytes[rng.int(headerEnd)] = rng.int(256);
    const file = path.join(dir, `flip-${i}.safetensors`);
    fs.writeFileSync(file, bytes);
    const error = await tryFile(file);
    if (error !== undefined) checkError(t, error, file, `flip ${i}`);
  }
});

t.test('every truncation is refused', async (t) => {
  const dir = tempDir(t);
  for (let i = 0; i < 60; i++) {
    const bytes = encodeFile(randomFileTensors());
    const cut = rng.int(bytes.length);
    const file = path.join(dir, `cut-${i}.safetensors`);
    fs.writeFileSync(file, bytes.subarray(0, cut));
    checkError(t, await tryFile(file), file, `cut at ${cut} of ${bytes.length}`, /too short|past the end|trailing|JSON/);
  }
});

/** Damage applied to the header of a valid two-tensor file, and what the error must say (`any`: the damage writes ill-typed values on purpose). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const headerDamage: Array<[string, (h: Record<string, any>) => void, RegExp]> = [
  ['unknown dtype', (h) => (h.a.dtype = ['F8_E4M3', 'f32', 'Q4_0', 7][rng.int(4)]), /tensor 'a': dtype .* is not supported/],
  ['shape/byte mismatch', (h) => (h.a.shape = [h.a.shape[0] + 1 + rng.int(3), ...h.a.shape.slice(1)]), /tensor 'a': F32\[.*\] needs \d+ bytes but data_offsets/],
  [
    'overlapping offsets',
    (h) => {
      h.b.data_offsets = [h.b.data_offsets[0] - 4, h.b.data_offsets[1]];
      h.b.shape = [h.b.shape[0] + 1];
    },
    /tensor 'b'.*overlap tensor 'a'/,
  ],
  ['offsets past the end', (h) => (h.b.data_offsets = [h.b.data_offsets[0] + 8, h.b.data_offsets[1] + 8]), /tensor 'b'.*run past the end/],
  ['reversed offsets', (h) => (h.a.data_offsets = [h.a.data_offsets[1], h.a.data_offsets[0]]), /tensor 'a'.*end before they begin/],
  ['negative offset', (h) => (h.a.data_offsets = [-4, h.a.data_offsets[1]]), /tensor 'a': data_offsets .* not a pair/],
  ['fractional shape', (h) => (h.a.shape = [1.5]), /tensor 'a': shape \[1\.5\] is not a list/],
  ['string shape', (h) => (h.a.shape = '4'), /tensor 'a': shape "4"/],
  ['entry not an object', (h) => (h.b = [1, 2]), /tensor 'b': entry is not an object/],
  ['metadata not strings', (h) => (h.__metadata__ = { n: 1 }), /__metadata__\.n is not a string/],
  ['no offsets', (h) => delete h.a.data_offsets, /tensor 'a': data_offsets undefined/],
];

t.test('damaged headers are refused with the reason', async (t) => {
  const dir = tempDir(t);
  for (const [label, damage, expect] of headerDamage) {
    const a = 2 + rng.int(4);
    const b = 1 + rng.int(4);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const header: Record<string, any> = {
      a: { dtype: 'F32', shape: [a], data_offsets: [0, 4 * a] },
      b: { dtype: 'F32', shape: [b], data_offsets: [4 * a, 4 * (a + b)] },
    };
    damage(header);
    const file = path.join(dir, `${label.replace(/\W/g, '_')}.safetensors`);
    fs.writeFileSync(file, encodeWithHeader(header, [new Uint8Array(4 * (a + b))]));
    checkError(t, await tryFile(file), file, label, expect);
  }
});

t.test('damaged framing is refused with the reason', async (t) => {
  const dir = tempDir(t);
  const good = encodeFile({ x: { dtype: 'F32', shape: [3], bytes: new Uint8Array(12) }, y: { dtype: 'U8', shape: [5], bytes: new Uint8Array(5) } });
  const cases: Array<[string, Buffer, RegExp]> = [];
  const pastEnd = Buffer.from(good);
  pastEnd.writeBigUInt64LE(BigInt(good.length - 8 + 1 + rng.int(1000)));
  cases.push(['header length past end', pastEnd, /header length \d+ runs past the end of the file/]);
  const huge = Buffer.from(good);
  huge.writeBigUInt64LE(2n ** 63n + BigInt(rng.int(1000)));
  cases.push(['huge header length', huge, /exceeds the 100000000-byte limit/]);
  cases.push(['trailing bytes', Buffer.concat([good, Buffer.alloc(1 + rng.int(9))]), /trailing data/]);
  cases.push(['empty file', Buffer.alloc(0), /0 bytes is too short/]);
  const badJson = Buffer.from(good);
  badJson[8] = '['.charCodeAt(0);
  cases.push(['bad JSON', badJson, /header is not valid JSON/]);
  cases.push(['header is an array', encodeWithHeader([1, 2], []), /header is not a JSON object/]);
  cases.push([
    'gap between tensors',
    encodeWithHeader({ x: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, y: { dtype: 'U8', shape: [2], data_offsets: [3, 5] } }, [new Uint8Array(5)]),
    /tensor 'y'.*leave a gap after byte 2/,
  ]);
  for (const [label, bytes, expect] of cases) {
    const file = path.join(dir, `${label.replace(/\W/g, '_')}.safetensors`);
    fs.writeFileSync(file, bytes);
    checkError(t, await tryFile(file), file, label, expect);
  }
  const file = path.join(dir, 'good.safetensors');
  fs.writeFileSync(file, good);
  t.equal(await tryFile(file), undefined, 'the undamaged file is accepted');
  const st = await SafetensorsFile.open(file);
  t.teardown(() => st.close());
  await t.rejects(st.readTensor('z'), { code: 'ERR_IO', message: new RegExp(`${file}: no tensor 'z' \\(the file holds: x, y\\)`) });
});

t.test('a file truncated after opening is reported on read', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'shrinks.safetensors');
  fs.writeFileSync(file, encodeFile({ x: { dtype: 'F32', shape: [64], bytes: new Uint8Array(256) } }));
  const st = await SafetensorsFile.open(file);
  t.teardown(() => st.close());
  fs.truncateSync(file, 100);
  checkError(t, await st.readBytes('x').then(() => undefined, (e: unknown) => e), file, 'read after truncation', /tensor 'x'.*file ended/);
});
