/**
 * Test-side safetensors encoding written from the format description, not from lib/: the tests
 * build files with it to check the reader, and decode the writer's output with it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Test } from 'tap';

export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** u64 LE header length, the JSON header, then each tensor's bytes back to back in order. */
export function encodeFile(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  return encodeWithHeader(header, Object.values(tensors).map((t) => t.bytes));
}

/** A file with exactly this header object and data (for hand-made damaged headers). */
export function encodeWithHeader(header: unknown, data: Uint8Array[]): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...data]);
}

export interface DecodedFile {
  headerLength: number;
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & { __metadata__?: Record<string, string> };
  data(name: string): Buffer;
}

export function decodeFile(bytes: Buffer): DecodedFile {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as DecodedFile['header'];
  const start = 8 + headerLength;
  return {
    headerLength,
    header,
    data: (name) => {
      const [b, e] = header[name].data_offsets;
      return bytes.subarray(start + b, start + e);
    },
  };
}

/** IEEE half-precision bits to a number (sign, 5-bit exponent, 10-bit mantissa). */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits are the top half of a float32. */
export function bf16ToNumber(bits: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt32LE((bits << 16) >>> 0);
  return b.readFloatLE(0);
}

export function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** A fresh temporary directory removed when the test ends. */
export function tempDir(t: Test, prefix = 'seqtune-io-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
