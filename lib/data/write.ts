/**
 * JSONL output with backpressure, and the scan that makes runs resumable: a rerun reads what an
 * earlier run wrote, drops a half-written last line (a crash mid-write), and skips the records
 * already done, so the output never holds a record twice and never loses one.
 *
 * A replacing writer writes a hidden temporary beside its path and renames it into place on
 * commit(); close() without commit() (an error) deletes it, so a failed run leaves no partial file
 * where a complete one is expected, and an existing file survives until the new one is whole.
 */
import { createReadStream, createWriteStream, WriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { SeqtuneError } from '../errors';
import { removeStaleStaged, stagedName } from '../io/staged';
import { DataRecord, recordToJson } from './records';

export class JsonlWriter {
  private committed = false;

  private constructor(
    private readonly stream: WriteStream,
    readonly path: string,
    /** where the lines go until commit(); `path` itself for an appending writer */
    private readonly temp: string,
  ) {}

  /** Opens for writing (`append` keeps existing lines and writes in place; otherwise the file is replaced on commit()). */
  static async open(path: string, options: { append?: boolean } = {}): Promise<JsonlWriter> {
    const temp = options.append ? path : stagedName(path, 'partial');
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (error) {
      throw new SeqtuneError(`cannot write ${path}: ${(error as Error).message}`, 'ERR_IO');
    }
    if (!options.append) await removeStaleStaged(path, ['partial']);
    const stream = createWriteStream(temp, { flags: options.append ? 'a' : 'w', encoding: 'utf8' });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (e) => reject(new SeqtuneError(`cannot write ${path}: ${e.message}`, 'ERR_IO')));
    });
    return new JsonlWriter(stream, path, temp);
  }

  async write(record: DataRecord): Promise<void> {
    await this.writeJson(recordToJson(record));
  }

  async writeJson(value: unknown): Promise<void> {
    if (!this.stream.write(JSON.stringify(value) + '\n')) {
      await new Promise<void>((resolve) => this.stream.once('drain', resolve));
    }
  }

  /** Finishes the file and (for a replacing writer) renames it into place. */
  async commit(): Promise<void> {
    await this.end();
    if (this.temp !== this.path) await rename(this.temp, this.path);
    this.committed = true;
  }

  /** Ends the stream; a replacing writer that was not committed removes its temporary. */
  async close(): Promise<void> {
    if (this.committed) return;
    if (this.temp === this.path) return this.end();
    await this.end().catch(() => undefined);
    await rm(this.temp, { force: true });
  }

  private end(): Promise<void> {
    if (this.stream.writableFinished) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.stream.end((error?: Error | null) => (error ? reject(new SeqtuneError(`cannot write ${this.path}: ${error.message}`, 'ERR_IO')) : resolve()));
    });
  }
}

export interface ExistingOutput {
  /** keys of the complete records already in the file */
  keys: Set<string>;
  lines: number;
  /** bytes of a half-written last line that were cut off */
  truncatedBytes: number;
}

/**
 * Reads an earlier run's output for resuming: the key of every complete line (by `keyOf`), after
 * cutting a trailing partial line. A complete line that is not valid JSON is an error, since the
 * file was not written by us or was damaged in a way a rerun cannot repair.
 */
export async function scanExistingOutput(path: string, keyOf: (value: Record<string, unknown>) => string | undefined): Promise<ExistingOutput> {
  const result: ExistingOutput = { keys: new Set(), lines: 0, truncatedBytes: 0 };
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return result;
  }
  if (size === 0) return result;
  // find the end of the last complete line
  const tail = await lastNewline(path, size);
  if (tail < size) {
    await truncate(path, tail);
    result.truncatedBytes = size - tail;
  }
  if (tail === 0) return result;
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8', end: tail - 1 }), crlfDelay: Infinity });
  for await (const text of lines) {
    result.lines++;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new SeqtuneError(`${path}:${result.lines}: cannot resume, existing output line is not JSON: ${(error as Error).message}`, 'ERR_DATA');
    }
    const key = keyOf(value as Record<string, unknown>);
    if (key !== undefined) result.keys.add(key);
  }
  return result;
}

async function lastNewline(path: string, size: number): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - buf.length);
      const { bytesRead } = await handle.read(buf, 0, end - start, start);
      const i = buf.subarray(0, bytesRead).lastIndexOf(10);
      if (i >= 0) return start + i + 1;
      end = start;
    }
    return 0;
  } finally {
    await handle.close();
  }
}
