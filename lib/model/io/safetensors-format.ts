/**
 * The safetensors layout, validated strictly before any tensor byte is trusted:
 *   [u64 little-endian N][N bytes of JSON header][data buffer]
 * The header maps tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to
 * the data buffer) plus an optional "__metadata__" map of strings. Like the reference Rust
 * implementation, we require the tensors to tile the data buffer exactly (sorted by offset, each
 * beginning where the previous ended, the last ending at end of file): a gap, an overlap or
 * trailing bytes means the file is damaged (a truncated download shows up here as a tensor past the
 * end), and a file we accepted but the reference refused would not round-trip through other tools.
 */
import { SeqtuneError } from '../../errors';
import { DType } from '../../tensor';

/** dtypes we read and write; I64 and U8 are readable as raw bytes only (no native dtype). */
export type SafetensorsDType = 'F32' | 'BF16' | 'F16' | 'I32' | 'F64' | 'I64' | 'U8';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = { F32: 4, BF16: 2, F16: 2, I32: 4, F64: 8, I64: 8, U8: 1 };

const TO_NATIVE: Readonly<Partial<Record<SafetensorsDType, DType>>> = { F32: 'f32', BF16: 'bf16', F16: 'f16', I32: 'i32', F64: 'f64' };
const FROM_NATIVE: Readonly<Record<DType, SafetensorsDType>> = { f32: 'F32', bf16: 'BF16', f16: 'F16', i32: 'I32', f64: 'F64' };

export function nativeDType(dtype: SafetensorsDType): DType | undefined {
  return TO_NATIVE[dtype];
}

export function safetensorsDType(dtype: DType): SafetensorsDType {
  return FROM_NATIVE[dtype];
}

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, value);
}

/** The reference implementation's limit: a larger header is a damaged or hostile file. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** absolute byte position in the file */
  readonly position: number;
  readonly byteLength: number;
}

export interface ParsedHeader {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly dataStart: number;
}

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fail(file: string, what: string): never {
  throw new SeqtuneError(`${file}: not a valid safetensors file: ${what}`, 'ERR_IO');
}

/** Reads the header length from the first 8 bytes and checks it against the file size. */
export function headerLength(file: string, prefix: Buffer, fileSize: number): number {
  if (fileSize < 8 || prefix.length < 8) fail(file, `${fileSize} bytes is too short for the 8-byte header length`);
  const n = prefix.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (Number(n) > fileSize - 8) fail(file, `header length ${n} runs past the end of the file (${fileSize} bytes)`);
  if (n < 2n) fail(file, `header length ${n} is too short for a JSON object`);
  return Number(n);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Parses and validates the JSON header; `fileSize` bounds the offsets. */
export function parseHeader(file: string, json: Buffer, fileSize: number): ParsedHeader {
  const dataStart = 8 + json.length;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch (error) {
    fail(file, `header is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(parsed)) fail(file, 'header is not a JSON object');

  const metadata: Record<string, string> = {};
  const rawMeta = parsed.__metadata__;
  if (rawMeta !== undefined && rawMeta !== null) {
    if (!isPlainObject(rawMeta)) fail(file, '__metadata__ is not an object');
    for (const [key, value] of Object.entries(rawMeta)) {
      if (typeof value !== 'string') fail(file, `__metadata__.${key} is not a string`);
      metadata[key] = value;
    }
  }

  const entries: Array<{ info: TensorInfo; begin: number; end: number }> = [];
  for (const [name, raw] of Object.entries(parsed)) {
    if (name === '__metadata__') continue;
    const where = `tensor '${name}'`;
    if (!isPlainObject(raw)) fail(file, `${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (!isSafetensorsDType(dtype)) {
      fail(file, `${where}: dtype ${JSON.stringify(dtype)} is not supported (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(file, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      fail(file, `${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    const numel = numelOf(shape as number[]);
    const expected = numel * DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(expected)) fail(file, `${where}: shape [${shape.join(',')}] is too large`);
    if (end < begin) fail(file, `${where}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end - begin !== expected) {
      fail(file, `${where}: ${dtype}[${shape.join(',')}] needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    if (dataStart + end > fileSize) {
      fail(file, `${where}: data_offsets [${begin}, ${end}] run past the end of the file (data buffer is ${fileSize - dataStart} bytes; truncated?)`);
    }
    const info: TensorInfo = { name, dtype, shape: Object.freeze([...(shape as number[])]), position: dataStart + begin, byteLength: expected };
    entries.push({ info, begin, end });
  }

  // Tiling check: sorted by offset, each tensor starts where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  for (const { info, begin, end } of entries) {
    if (begin < cursor) fail(file, `tensor '${info.name}': data_offsets [${begin}, ${end}] overlap tensor '${previous}' (ends at ${cursor})`);
    if (begin > cursor) fail(file, `tensor '${info.name}': data_offsets [${begin}, ${end}] leave a gap after byte ${cursor}`);
    cursor = end;
    previous = info.name;
  }
  if (dataStart + cursor !== fileSize) {
    fail(file, `the tensors end at byte ${dataStart + cursor} but the file has ${fileSize} bytes (trailing data)`);
  }
  const tensors = new Map<string, TensorInfo>();
  for (const { info } of entries) tensors.set(info.name, info);
  return { tensors, metadata, dataStart };
}

/** The header bytes for tensors laid out in the given order, padded with spaces to 8 bytes. */
export function buildHeader(
  specs: ReadonlyArray<{ name: string; dtype: SafetensorsDType; shape: readonly number[] }>,
  metadata: Readonly<Record<string, string>> | undefined,
): { header: Buffer; byteLengths: number[] } {
  // No prototype, so a tensor named '__proto__' is an ordinary key.
  const json: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (metadata && Object.keys(metadata).length > 0) json.__metadata__ = metadata;
  let offset = 0;
  const byteLengths: number[] = [];
  for (const spec of specs) {
    if (spec.name === '__metadata__') throw new SeqtuneError(`'__metadata__' cannot be a tensor name`, 'ERR_ARGUMENT');
    if (Object.prototype.hasOwnProperty.call(json, spec.name)) throw new SeqtuneError(`tensor '${spec.name}' is listed twice`, 'ERR_ARGUMENT');
    if (spec.shape.some((d) => !isCount(d))) throw new SeqtuneError(`tensor '${spec.name}': bad shape [${spec.shape.join(',')}]`, 'ERR_SHAPE');
    const bytes = numelOf(spec.shape) * DTYPE_BYTES[spec.dtype];
    json[spec.name] = { dtype: spec.dtype, shape: [...spec.shape], data_offsets: [offset, offset + bytes] };
    byteLengths.push(bytes);
    offset += bytes;
  }
  // Padding the header keeps the data buffer 8-byte aligned, as the reference writer does.
  let text = JSON.stringify(json);
  const body = Buffer.byteLength(text);
  text += ' '.repeat((8 - (body % 8)) % 8);
  const header = Buffer.alloc(8 + Buffer.byteLength(text));
  header.writeBigUInt64LE(BigInt(header.length - 8), 0);
  header.write(text, 8, 'utf8');
  return { header, byteLengths };
}
