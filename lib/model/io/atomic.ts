/**
 * Atomic file replacement: write a temporary file in the destination's directory (so rename stays
 * on one filesystem), fsync it, rename it over the destination, fsync the directory. A crash or an
 * error at any point leaves either the old file or the new one, never a half-written file, and the
 * temporary file is removed on error.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ioError } from './safetensors';

/** fs.write moves at most 2^31-1 bytes per call. */
const WRITE_CHUNK = 2 ** 30;

/** Writes all of `bytes` at the handle's current position, looping over short writes. */
export async function writeAll(handle: fs.FileHandle, bytes: ArrayBufferView): Promise<void> {
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let done = 0;
  while (done < view.length) {
    const { bytesWritten } = await handle.write(view, done, Math.min(WRITE_CHUNK, view.length - done));
    done += bytesWritten;
  }
}

export async function writeFileAtomic(file: string, write: (handle: fs.FileHandle) => Promise<void>): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(temp, 'wx');
  } catch (error) {
    throw ioError(file, `create a temporary file in ${dir}`, error);
  }
  try {
    await write(handle);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, file);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temp, { force: true });
    throw ioError(file, 'write', error);
  }
  await syncDirectory(dir);
}

/** Makes the rename durable; some filesystems cannot fsync a directory, which is not an error. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // EINVAL/EISDIR on filesystems without directory fsync: the data itself is already synced.
  } finally {
    await handle.close();
  }
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, (handle) => writeAll(handle, Buffer.from(`${JSON.stringify(value, null, 2)}\n`)));
}
