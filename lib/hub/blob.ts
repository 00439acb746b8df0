/**
 * One file from the Hub into the cache's blobs/: written to blobs/<etag>.incomplete, resumed from
 * there with a Range request after a cut (here or in an earlier run), checked (size; sha256 for an
 * LFS file, whose ETag is its sha256), synced, and only then renamed to blobs/<etag>. A later run
 * trusts only the renamed file, so nothing it reads is ever half-written or corrupt.
 */
import { createHash, Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeAll } from '../model/io/atomic';
import { FileMetadata, HubClient, HubError, isSha256 } from './api';
import { formatBytes, TransferProgress } from './progress';
import { formatHubRef, HubRef } from './repo-id';

/** Attempts per file within one run; each resumes where the last one stopped. */
const ATTEMPTS = 3;

async function sizeOf(file: string): Promise<number> {
  return fs.stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

export function incompletePath(blob: string): string {
  return `${blob}.incomplete`;
}

/** Bytes already on disk for a blob: all of them when it is complete, else its .incomplete part. */
export async function bytesOnDisk(blob: string, size: number): Promise<number> {
  if (await fs.stat(blob).then(() => true, () => false)) return size;
  return Math.min(await sizeOf(incompletePath(blob)), size);
}

export function diskFullError(ref: HubRef, dir: string, need: number, partial: boolean): HubError {
  return new HubError(
    `no space left on the disk of ${dir} for ${formatHubRef(ref)} (${formatBytes(need)} more needed): free space there, ` +
      `or set HF_HUB_CACHE to a folder on a larger disk${partial ? '; the partial download resumes on the next run' : ''}`,
  );
}

async function hashPrefix(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

function contentRangeStartsAt(response: Response, start: number): boolean {
  return Number(/^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1]) === start;
}

/** Streams the body into `temp` (appending), returning why it stopped early if it did. */
async function receive(response: Response, temp: string, append: boolean, hash: Hash | null, progress: TransferProgress, ref: HubRef): Promise<string | null> {
  const handle = await fs.open(temp, append ? 'a' : 'w');
  try {
    const reader = response.body!.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause;
        return cause?.code ?? (error as Error).message;
      }
      if (chunk.done) return null;
      try {
        await writeAll(handle, chunk.value);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') throw diskFullError(ref, path.dirname(temp), 0, true);
        throw error;
      }
      hash?.update(chunk.value);
      progress.add(chunk.value.length);
    }
  } finally {
    await handle.sync().catch(() => undefined);
    await handle.close();
  }
}

/** Downloads `meta` into `blob` (see the file comment); `progress` counts the bytes as they come. */
export async function downloadBlob(client: HubClient, ref: HubRef, meta: FileMetadata, blob: string, progress: TransferProgress): Promise<void> {
  if (await fs.stat(blob).then(() => true, () => false)) return;
  const temp = incompletePath(blob);
  await fs.mkdir(path.dirname(blob), { recursive: true });
  const lfs = isSha256(meta.etag);
  let stopped = '';
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let have = await sizeOf(temp);
    if (have > meta.size) {
      progress.add(-meta.size);
      await fs.rm(temp, { force: true });
      have = 0;
    }
    const hash = lfs ? createHash('sha256') : null;
    if (have < meta.size) {
      const response = await client.download(meta, ref, have);
      let append = have > 0;
      if (response.status === 200 && append) {
        // The server ignored the Range: start over.
        progress.add(-have);
        append = false;
      } else if (response.status === 416) {
        progress.add(-have);
        await fs.rm(temp, { force: true });
        continue;
      } else if (response.status === 206 && !contentRangeStartsAt(response, have)) {
        throw new HubError(`${formatHubRef(ref)}: ${meta.location} answered a Range request for ${meta.file} with other bytes (${response.headers.get('content-range')}): check HF_ENDPOINT`);
      } else if (!response.ok) {
        throw client.statusError(response, ref, meta.file);
      }
      if (hash && append) await hashPrefix(temp, hash);
      stopped = (await receive(response, temp, append, hash, progress, ref)) ?? '';
    } else if (hash) {
      await hashPrefix(temp, hash);
    }
    const got = await sizeOf(temp);
    if (got < meta.size) {
      stopped = `stopped at ${formatBytes(got)} of ${formatBytes(meta.size)}${stopped ? `: ${stopped}` : ''}`;
      continue;
    }
    if (got > meta.size || (hash && hash.digest('hex') !== meta.etag)) {
      await fs.rm(temp, { force: true });
      throw new HubError(
        `${formatHubRef(ref)}: ${meta.file} arrived corrupt (${got > meta.size ? `${got} bytes, expected ${meta.size}` : 'its sha256 is not the ETag the Hub gave'}); ` +
          'the bad copy was deleted: run again to download it afresh',
      );
    }
    await fs.rename(temp, blob);
    return;
  }
  throw new HubError(`${formatHubRef(ref)}: the transfer of ${meta.file} was cut (${stopped}) ${ATTEMPTS} times: run the same command again to resume from there`);
}
