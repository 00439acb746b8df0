/**
 * Writing safetensors files atomically (./atomic.ts). The header needs every name, dtype and shape
 * up front, but the data can come later: an entry's `data` may be a function that produces the
 * tensor when the writer reaches it, so a model larger than memory is written one tensor at a time.
 */
import { SeqtuneError } from '../../errors';
import { Tensor } from '../../tensor';
import { writeAll, writeFileAtomic } from './atomic';
import { buildHeader, DTYPE_BYTES, nativeDType, SafetensorsDType, safetensorsDType } from './safetensors-format';

export type TensorData = Tensor | ArrayBufferView;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  /**
   * The data: a Tensor (its bytes via toBytes()) or raw little-endian bytes in any typed array; or
   * a function producing either when the writer gets to this entry. Tensors a function produces
   * are disposed once written; tensors passed directly stay the caller's.
   */
  data: TensorData | (() => TensorData | Promise<TensorData>);
}

/** An entry for an existing tensor, with its dtype and shape. */
export function tensorEntry(name: string, tensor: Tensor): TensorEntry {
  return { name, dtype: safetensorsDType(tensor.dtype), shape: tensor.shape, data: tensor };
}

export function entryBytes(entry: Pick<TensorEntry, 'dtype' | 'shape'>): number {
  return entry.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[entry.dtype];
}

async function bytesOf(entry: TensorEntry, data: TensorData, expected: number): Promise<ArrayBufferView> {
  if (data instanceof Tensor) {
    const want = nativeDType(entry.dtype);
    if (data.dtype !== want || data.shape.length !== entry.shape.length || data.shape.some((d, i) => d !== entry.shape[i])) {
      throw new SeqtuneError(`${data.describe()} was given but the entry declares ${entry.dtype}[${entry.shape.join(',')}]`, 'ERR_SHAPE');
    }
    return new Uint8Array(await data.toBytes());
  }
  if (data.byteLength !== expected) {
    throw new SeqtuneError(
      `${data.byteLength} bytes given but ${entry.dtype}[${entry.shape.join(',')}] needs ${expected}`,
      'ERR_SHAPE',
    );
  }
  return data;
}

/**
 * Writes `entries` in order to `file` with optional string metadata, replacing it atomically.
 * Errors name the file and the tensor; on error the previous file (if any) is left untouched.
 */
export async function writeSafetensors(file: string, entries: readonly TensorEntry[], metadata?: Readonly<Record<string, string>>): Promise<void> {
  let header: Buffer;
  let byteLengths: number[];
  try {
    ({ header, byteLengths } = buildHeader(entries, metadata));
  } catch (error) {
    throw new SeqtuneError(`${file}: ${(error as Error).message}`, (error as SeqtuneError).code ?? 'ERR_ARGUMENT');
  }
  await writeFileAtomic(file, async (handle) => {
    await writeAll(handle, header);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      const produced = typeof entry.data === 'function';
      let data: TensorData | undefined;
      try {
        data = typeof entry.data === 'function' ? await entry.data() : entry.data;
        const bytes = await bytesOf(entry, data, byteLengths[i]);
        // Free a produced tensor before writing its host copy: one copy in memory, not two.
        if (produced && data instanceof Tensor) data.dispose();
        await writeAll(handle, bytes);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new SeqtuneError(`${file}: tensor '${entry.name}': ${message}`, error instanceof SeqtuneError ? error.code : 'ERR_IO');
      } finally {
        if (produced && data instanceof Tensor) data.dispose();
      }
    }
  });
}
