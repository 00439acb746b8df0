/**
 * Reading safetensors files (writing: ./safetensors-writer.ts; layout and validation:
 * ./safetensors-format.ts).
 *
 * Why our own code: the format is an 8-byte length, a JSON header and raw little-endian bytes, so
 * a strict reader is ~100 lines. On npm (checked with `npm view`, Nov 2026) the package named
 * `safetensors` is a single 0.0.1 release with no repository, and @huggingface/hub only parses
 * headers of files on the Hub over HTTP; none reads one tensor at a time from a local file with
 * positioned reads (never the whole file in memory) and validates offsets the way the reference
 * Rust implementation does.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import { SeqtuneError } from '../../errors';
import { native } from '../../native';
import { cast } from '../../ops';
import { DType, Tensor } from '../../tensor';
import { headerLength, nativeDType, ParsedHeader, parseHeader, TensorInfo } from './safetensors-format';

/** fs.read moves at most 2^31-1 bytes per call; 1 GiB chunks stay well inside that. */
const READ_CHUNK = 2 ** 30;

export interface ReadTensorOptions {
  /** where the tensor goes; default 'cpu' */
  device?: string;
  /** convert to this dtype after loading (e.g. bf16 weights into f32); default: the stored dtype */
  dtype?: DType;
}

export function ioError(file: string, action: string, error: unknown): SeqtuneError {
  if (error instanceof SeqtuneError) return error;
  const err = error as NodeJS.ErrnoException;
  return new SeqtuneError(`${file}: cannot ${action}: ${err.code ? `${err.code} ` : ''}${err.message}`, 'ERR_IO');
}

/** Fills `buffer` from `position`, looping over short reads; a file that ends early is an error. */
async function readExactly(handle: fs.FileHandle, buffer: Buffer, position: number, file: string, what: string): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const want = Math.min(READ_CHUNK, buffer.length - done);
    const { bytesRead } = await handle.read(buffer, done, want, position + done);
    if (bytesRead === 0) {
      throw new SeqtuneError(`${file}: ${what}: file ended after ${position + done} bytes (it was truncated while open?)`, 'ERR_IO');
    }
    done += bytesRead;
  }
}

/** An open safetensors file: the validated header in memory, tensor bytes read on demand. */
export class SafetensorsFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: fs.FileHandle,
    private readonly header: ParsedHeader,
  ) {}

  /** Opens `file` and validates its header; throws ERR_IO naming the file on any problem. */
  static async open(file: string): Promise<SafetensorsFile> {
    if (os.endianness() !== 'LE') throw new SeqtuneError(`${file}: safetensors data is little-endian; this host is big-endian`, 'ERR_NOT_IMPLEMENTED');
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      throw ioError(file, 'open', error);
    }
    try {
      const { size } = await handle.stat();
      const prefix = Buffer.alloc(Math.min(8, size));
      await readExactly(handle, prefix, 0, file, 'header length');
      const json = Buffer.alloc(headerLength(file, prefix, size));
      await readExactly(handle, json, 8, file, 'header');
      return new SafetensorsFile(file, handle, parseHeader(file, json, size));
    } catch (error) {
      await handle.close();
      throw ioError(file, 'read', error);
    }
  }

  get metadata(): Readonly<Record<string, string>> {
    return this.header.metadata;
  }

  /** Tensor names in file order. */
  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.header.tensors.get(name);
    if (!info) {
      const names = this.names();
      const listed = names.length > 20 ? `${names.slice(0, 20).join(', ')}, ... (${names.length} in all)` : names.join(', ');
      throw new SeqtuneError(`${this.path}: no tensor '${name}' (the file holds: ${listed || 'nothing'})`, 'ERR_IO');
    }
    return info;
  }

  /** The tensor's raw little-endian bytes, read with one positioned read. */
  async readBytes(name: string): Promise<Buffer> {
    const info = this.info(name);
    if (this.closed) throw new SeqtuneError(`${this.path}: tensor '${name}': the file was closed`, 'ERR_IO');
    const buffer = Buffer.alloc(info.byteLength);
    try {
      await readExactly(this.handle, buffer, info.position, this.path, `tensor '${name}'`);
    } catch (error) {
      throw ioError(this.path, `read tensor '${name}'`, error);
    }
    return buffer;
  }

  /** The tensor as a seqtune Tensor; I64/U8 have no native dtype: use readBytes for them. */
  async readTensor(name: string, options: ReadTensorOptions = {}): Promise<Tensor> {
    const info = this.info(name);
    const dtype = nativeDType(info.dtype);
    if (!dtype) {
      throw new SeqtuneError(`${this.path}: tensor '${name}' is ${info.dtype}, which has no seqtune dtype; read its bytes with readBytes()`, 'ERR_DTYPE');
    }
    const bytes = await this.readBytes(name);
    // The native side copies the bytes as they are, whatever the dtype: no per-element conversion,
    // and bf16/f16 keep their exact bits.
    const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    const loaded = new Tensor(native().fromHost(options.device ?? 'cpu', dtype, [...info.shape], view));
    if (options.dtype === undefined || options.dtype === dtype) return loaded;
    try {
      return cast(loaded, options.dtype);
    } finally {
      loaded.dispose();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
