/**
 * A model directory's weights in Hugging Face layout: either one `model.safetensors`, or shards
 * listed by `model.safetensors.index.json` ({"metadata": {"total_size": N}, "weight_map":
 * {tensor name: shard file}}). Reading opens every shard once and reads tensors on demand; writing
 * splits tensors into shards of at most `maxShardBytes` and writes each shard, then the index,
 * atomically.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SeqtuneError } from '../../errors';
import { Tensor } from '../../tensor';
import { writeJsonAtomic } from './atomic';
import { TensorInfo } from './safetensors-format';
import { ioError, ReadTensorOptions, SafetensorsFile } from './safetensors';
import { entryBytes, TensorEntry, writeSafetensors } from './safetensors-writer';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
/** Hugging Face's default max_shard_size. */
export const DEFAULT_MAX_SHARD_BYTES = 5e9;

const SHARD_NAME = /^model-\d{5}-of-\d{5}\.safetensors$/;

function shardName(index: number, count: number): string {
  return `model-${String(index + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

async function removeIfPresent(file: string): Promise<void> {
  try {
    await fs.rm(file, { force: true });
  } catch (error) {
    throw ioError(file, 'remove a stale weight file', error);
  }
}

/** The tensors of a checkpoint, whichever file each lives in. */
export class CheckpointReader {
  private constructor(
    /** the index file, or the single safetensors file */
    readonly source: string,
    private readonly files: readonly SafetensorsFile[],
    private readonly fileOf: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  /** Opens the weights in `dir`: the index and its shards if there is one, else model.safetensors. */
  static async open(dir: string): Promise<CheckpointReader> {
    const index = path.join(dir, INDEX_FILE);
    if (await exists(index)) return CheckpointReader.openIndex(index);
    const single = path.join(dir, SINGLE_FILE);
    if (await exists(single)) return CheckpointReader.openFiles(single, [single]);
    throw new SeqtuneError(`${dir}: no weights found: expected ${SINGLE_FILE} or ${INDEX_FILE} (with its shards)`, 'ERR_IO');
  }

  /** Opens a sharded checkpoint through its index, checking the index against the shards. */
  static async openIndex(indexFile: string): Promise<CheckpointReader> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await fs.readFile(indexFile, 'utf8'));
    } catch (error) {
      throw ioError(indexFile, 'read the index', error);
    }
    const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
    if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
      throw new SeqtuneError(`${indexFile}: no "weight_map" object mapping tensor names to shard files`, 'ERR_IO');
    }
    const byShard = new Map<string, string[]>();
    for (const [name, shard] of Object.entries(weightMap)) {
      // A shard is a file next to the index: a path elsewhere would read outside the model dir.
      if (typeof shard !== 'string' || shard !== path.basename(shard) || shard === '..' || shard === '.') {
        throw new SeqtuneError(`${indexFile}: tensor '${name}' maps to ${JSON.stringify(shard)}, not a file name in the same directory`, 'ERR_IO');
      }
      byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
    }
    const dir = path.dirname(indexFile);
    const reader = await CheckpointReader.openFiles(indexFile, [...byShard.keys()].map((s) => path.join(dir, s)));
    for (const [shard, names] of byShard) {
      const file = path.join(dir, shard);
      for (const name of names) {
        if (reader.fileOf.get(name)?.path !== file) {
          await reader.close();
          throw new SeqtuneError(`${indexFile}: tensor '${name}' is mapped to ${shard}, which does not hold it`, 'ERR_IO');
        }
      }
    }
    const unlisted = reader.names().filter((n) => !Object.prototype.hasOwnProperty.call(weightMap, n));
    if (unlisted.length > 0) {
      await reader.close();
      throw new SeqtuneError(`${indexFile}: the shards hold tensors the weight_map does not list: ${unlisted.join(', ')}`, 'ERR_IO');
    }
    return reader;
  }

  private static async openFiles(source: string, paths: readonly string[]): Promise<CheckpointReader> {
    const files: SafetensorsFile[] = [];
    const fileOf = new Map<string, SafetensorsFile>();
    try {
      for (const p of paths) {
        const file = await SafetensorsFile.open(p);
        files.push(file);
        for (const name of file.names()) {
          const other = fileOf.get(name);
          if (other) throw new SeqtuneError(`tensor '${name}' is in both ${other.path} and ${p}`, 'ERR_IO');
          fileOf.set(name, file);
        }
      }
    } catch (error) {
      await Promise.all(files.map((f) => f.close()));
      throw error;
    }
    return new CheckpointReader(source, files, fileOf);
  }

  names(): string[] {
    return [...this.fileOf.keys()];
  }

  has(name: string): boolean {
    return this.fileOf.has(name);
  }

  /** dtype, shape and location of a tensor; throws naming the checkpoint when it is absent. */
  info(name: string): TensorInfo & { file: string } {
    return { ...this.fileFor(name).info(name), file: this.fileFor(name).path };
  }

  /** Every tensor's shape, for checking against a config (see checkWeights). */
  shapes(): Map<string, readonly number[]> {
    return new Map(this.names().map((n) => [n, this.fileFor(n).info(n).shape]));
  }

  async readTensor(name: string, options?: ReadTensorOptions): Promise<Tensor> {
    return this.fileFor(name).readTensor(name, options);
  }

  async readBytes(name: string): Promise<Buffer> {
    return this.fileFor(name).readBytes(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private fileFor(name: string): SafetensorsFile {
    const file = this.fileOf.get(name);
    if (!file) throw new SeqtuneError(`${this.source}: no tensor '${name}' in this checkpoint (${this.fileOf.size} tensors)`, 'ERR_IO');
    return file;
  }
}

export interface WriteCheckpointOptions {
  /** shard size limit in bytes (a single larger tensor gets a shard of its own); default 5e9 */
  maxShardBytes?: number;
  /** string metadata stored in every safetensors header; HF writes {format: 'pt'} */
  metadata?: Readonly<Record<string, string>>;
}

/**
 * Splits entries, in order, into shards of at most maxShardBytes (a larger tensor alone in its
 * shard), as transformers' save_pretrained does. Always at least one (possibly empty) shard.
 */
export function planShards<T extends Pick<TensorEntry, 'dtype' | 'shape'>>(entries: readonly T[], maxShardBytes: number): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let currentBytes = 0;
  for (const entry of entries) {
    const bytes = entryBytes(entry);
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(entry);
    currentBytes += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/**
 * Writes tensors into `dir` (which must exist) as model.safetensors, or as shards plus index when
 * they exceed maxShardBytes. Entries whose data is a function are produced one at a time, so
 * memory holds one tensor however large the model. Weight files of the other layout or an earlier
 * shard count are removed afterwards, so the directory never holds two disagreeing sets.
 * Returns the file names written.
 */
export async function writeCheckpoint(dir: string, entries: readonly TensorEntry[], options: WriteCheckpointOptions = {}): Promise<string[]> {
  const metadata = options.metadata ?? { format: 'pt' };
  const shards = planShards(entries, options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES);

  let written: string[];
  if (shards.length === 1) {
    // The index wins over model.safetensors when both exist, so an old one goes first: a crash
    // then leaves no weights (a loud error) rather than silently stale ones.
    await removeIfPresent(path.join(dir, INDEX_FILE));
    await writeSafetensors(path.join(dir, SINGLE_FILE), shards[0], metadata);
    written = [SINGLE_FILE];
  } else {
    const names = shards.map((_, i) => shardName(i, shards.length));
    const weightMap: Record<string, string> = {};
    for (let i = 0; i < shards.length; i++) {
      await writeSafetensors(path.join(dir, names[i]), shards[i], metadata);
      for (const entry of shards[i]) weightMap[entry.name] = names[i];
    }
    const totalSize = entries.reduce((sum, e) => sum + entryBytes(e), 0);
    await writeJsonAtomic(path.join(dir, INDEX_FILE), { metadata: { total_size: totalSize }, weight_map: weightMap });
    written = [...names, INDEX_FILE];
  }
  const stale = (await fs.readdir(dir)).filter((f) => (f === SINGLE_FILE || SHARD_NAME.test(f)) && !written.includes(f));
  for (const f of stale) await removeIfPresent(path.join(dir, f));
  return written;
}
