/**
 * A model revision in the local cache, fetched from the Hub as needed: the commit the revision
 * names, the files seqtune needs at that commit (or those --include picks), each downloaded once
 * into blobs/ and linked from snapshots/<commit>/. A pinned commit already cached is used without
 * asking the Hub; a branch is looked up (one request) unless HF_HUB_OFFLINE is set or the Hub cannot
 * be reached, when the cached snapshot stands in.
 */
import * as fs from 'node:fs/promises';
import { SeqtuneError } from '../errors';
import { FileMetadata, HubClient, HubError } from './api';
import { bytesOnDisk, diskFullError, downloadBlob } from './blob';
import { RepoCache } from './cache';
import { hubOffline } from './env';
import { INDEX_FILE, planFiles, shardsOfIndex, snapshotComplete } from './files';
import { ProgressStream, TransferProgress } from './progress';
import { formatHubRef, HubRef, isCommitHash } from './repo-id';

export interface FetchOptions {
  /** globs picking the files instead of the ones seqtune needs (`seqtune download --include`) */
  include?: string[];
  client?: HubClient;
  /** the hub cache folder (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub) */
  cacheDir?: string;
  offline?: boolean;
  /** progress bar and notices (default stderr) */
  stream?: ProgressStream;
}

export interface Snapshot {
  dir: string;
  commit: string;
  /** files fetched by this call (empty when the cache had them all) */
  downloaded: string[];
}

const silent: ProgressStream = { write: () => true };

export async function fetchSnapshot(ref: HubRef, options: FetchOptions = {}): Promise<Snapshot> {
  try {
    return await fetchInto(new RepoCache(ref.id, options.cacheDir), ref, options);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (error instanceof SeqtuneError || !err.code) throw error;
    throw new HubError(`${formatHubRef(ref)}: cannot use the Hugging Face cache (${err.code} ${err.path ?? ''}): check its permissions, or set HF_HUB_CACHE to a folder you can write`);
  }
}

async function fetchInto(cache: RepoCache, ref: HubRef, options: FetchOptions): Promise<Snapshot> {
  const stream = options.stream ?? process.stderr;
  const cachedCommit = await cache.commitFor(ref.revision);
  const cached = cachedCommit && !options.include && (await snapshotComplete(cache.snapshotDir(cachedCommit))) ? cachedCommit : null;
  const fromCache = (): Snapshot => ({ dir: cache.snapshotDir(cached!), commit: cached!, downloaded: [] });

  if (options.offline ?? hubOffline()) {
    if (cached) return fromCache();
    throw new HubError(
      `HF_HUB_OFFLINE is set and ${formatHubRef(ref)} is not in the cache (${cache.folder}): ` +
        `run 'seqtune download ${formatHubRef(ref)}' while online, or unset HF_HUB_OFFLINE`,
    );
  }
  if (cached && isCommitHash(ref.revision)) return fromCache();

  const client = options.client ?? new HubClient();
  let listing: { commit: string; files: string[] };
  try {
    listing = await client.revision(ref);
  } catch (error) {
    if (!(error instanceof HubError && error.unreachable && cached)) throw error;
    stream.write(`${error.message.split(':')[0]}; using the cached snapshot ${cached}\n`);
    return fromCache();
  }
  const { commit } = listing;
  const plan = planFiles(ref, listing.files, options.include);
  const downloaded: string[] = [];

  const fetchAll = async (metas: FileMetadata[], progressStream: ProgressStream) => {
    const missing: FileMetadata[] = [];
    for (const meta of metas) {
      if (await fs.stat(cache.blobPath(meta.etag)).then(() => true, () => false)) await cache.link(commit, meta.file, meta.etag);
      else missing.push(meta);
    }
    if (!missing.length) return;
    const total = missing.reduce((n, m) => n + m.size, 0);
    let already = 0;
    for (const m of missing) already += await bytesOnDisk(cache.blobPath(m.etag), m.size);
    await fs.mkdir(cache.blobPath(''), { recursive: true });
    const free = await fs.statfs(cache.blobPath('')).then((s) => s.bavail * s.bsize, () => Infinity);
    if (total - already > free) throw diskFullError(ref, cache.folder, total - already - free, false);
    const progress = new TransferProgress(formatHubRef(ref), total, already, progressStream);
    for (const meta of missing) {
      await downloadBlob(client, ref, meta, cache.blobPath(meta.etag), progress);
      await cache.link(commit, meta.file, meta.etag);
      downloaded.push(meta.file);
    }
    progress.finish();
  };
  const metadata = async (files: string[]) => {
    const out: FileMetadata[] = [];
    for (const file of files) if (!(await cache.hasFile(commit, file))) out.push(await client.fileMetadata(ref, commit, file));
    return out;
  };

  let files = plan.files;
  if (plan.fromIndex) {
    // The index names the shards, so it comes first (it is small: no bar of its own).
    await fetchAll(await metadata([INDEX_FILE]), silent);
    const shards = shardsOfIndex(ref, await fs.readFile(`${cache.snapshotDir(commit)}/${INDEX_FILE}`, 'utf8'));
    files = [...files.filter((f) => f !== INDEX_FILE), ...shards];
  }
  await fetchAll(await metadata(files), stream);
  await cache.writeRef(ref.revision, commit);
  return { dir: cache.snapshotDir(commit), commit, downloaded };
}
