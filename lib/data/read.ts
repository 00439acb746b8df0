/**
 * Streamed reading of record files: JSONL (one record a line) or a JSON array, detected from the
 * first non-blank character. Records come one at a time from an async iterator, so file size does
 * not bound memory. A malformed line or record raises ERR_DATA naming file:line and the reason;
 * with `skipInvalid` it is counted in `counts.skipped` and left out instead. A broken JSON array
 * structure (unbalanced brackets, missing ']') is always an error: nothing after it can be trusted.
 */
import { createReadStream } from 'node:fs';
import { FileHandle, open } from 'node:fs/promises';
import { SeqtuneError } from '../errors';
import { JsonArrayScanner } from './json-stream';
import { DataCounts, DataRecord, dataError, emptyCounts, parseRecord, ParseOptions } from './records';

export type FileFormat = 'auto' | 'json' | 'jsonl';

export interface ReadOptions extends ParseOptions {
  format?: FileFormat;
  skipInvalid?: boolean;
  /** counts to update (in, skipped); a fresh object is used when absent */
  counts?: DataCounts;
  /** called for each skipped record with its error (e.g. to log it) */
  onSkip?: (error: SeqtuneError) => void;
}

export interface SourcedRecord {
  record: DataRecord;
  /** 1-based line where the record starts */
  line: number;
  /** 0-based position among all records of the file, valid or not */
  ordinal: number;
}

/** Refuses a data path that cannot be read as a file (train checks its inputs before any other work). */
export async function checkDataFile(path: string): Promise<void> {
  const handle = await openDataFile(path);
  await handle.close();
}

async function openDataFile(path: string): Promise<FileHandle> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new SeqtuneError(`cannot open ${path}: ${(error as Error).message}`, 'ERR_IO');
  }
  if ((await handle.stat()).isDirectory()) {
    await handle.close();
    throw new SeqtuneError(`cannot read ${path}: it is a directory, not a data file`, 'ERR_IO');
  }
  return handle;
}

async function detectFormat(path: string): Promise<'json' | 'jsonl'> {
  const handle = await openDataFile(path);
  try {
    const buf = Buffer.alloc(4096);
    for (let pos = 0; ; ) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return 'jsonl';
      for (let i = 0; i < bytesRead; i++) {
        const c = buf[i];
        // skip whitespace and a UTF-8 byte-order mark
        if (c === 32 || c === 10 || c === 13 || c === 9 || c === 0xef || c === 0xbb || c === 0xbf) continue;
        return c === 91 ? 'json' : 'jsonl';
      }
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/**
 * The longest JSONL line read, in bytes: a file without newlines (binary data, /dev/zero) stops
 * there with a message naming the file instead of growing one string until memory runs out.
 */
export const MAX_LINE_BYTES = 64 * 2 ** 20;

async function* jsonlTexts(path: string, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<{ text: string; line: number }> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  const tooLong = () =>
    new SeqtuneError(`${path}:${line + 1}: the line is longer than ${maxLineBytes / 2 ** 20} MiB, the limit for one record (is this a JSONL or JSON file?)`, 'ERR_DATA');
  function* emit(bytes: Buffer): Generator<{ text: string; line: number }> {
    line++;
    let text = bytes.toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() !== '') yield { text, line };
  }
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      if (pendingBytes + piece.length > maxLineBytes) throw tooLong();
      yield* emit(pending.length ? Buffer.concat([...pending, piece]) : piece);
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes > maxLineBytes) throw tooLong();
    }
  }
  if (pendingBytes > 0) yield* emit(Buffer.concat(pending));
}

async function* jsonArrayTexts(path: string): AsyncGenerator<{ text: string; line: number }> {
  const scanner = new JsonArrayScanner(path);
  let first = true;
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 16 })) {
    let text = chunk as string;
    if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    first = false;
    yield* scanner.push(text);
  }
  scanner.end();
}

/** The JSON values of a JSONL or JSON-array file, streamed, with the line each starts on. */
export async function* readJsonValues(path: string, options: Pick<ReadOptions, 'format' | 'skipInvalid' | 'counts' | 'onSkip'> = {}): AsyncGenerator<{ value: unknown; line: number; ordinal: number }> {
  const counts = options.counts ?? emptyCounts();
  const format = !options.format || options.format === 'auto' ? await detectFormat(path) : options.format;
  const texts = format === 'json' ? jsonArrayTexts(path) : jsonlTexts(path);
  let ordinal = 0;
  try {
    for await (const { text, line } of texts) {
      counts.in++;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        const invalid = dataError({ file: path, line }, `invalid JSON: ${(error as Error).message}`);
        if (!options.skipInvalid) throw invalid;
        counts.skipped++;
        options.onSkip?.(invalid);
        ordinal++;
        continue;
      }
      yield { value, line, ordinal: ordinal++ };
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      throw new SeqtuneError(`cannot read ${path}: ${(error as Error).message}`, 'ERR_IO');
    }
    throw error;
  }
}

/** The records of a JSONL or JSON-array file, streamed. */
export async function* readRecords(path: string, options: ReadOptions = {}): AsyncGenerator<SourcedRecord> {
  const counts = options.counts ?? emptyCounts();
  for await (const { value, line, ordinal } of readJsonValues(path, { ...options, counts })) {
    let record: DataRecord;
    try {
      record = parseRecord(value, { file: path, line }, options);
    } catch (error) {
      if (!options.skipInvalid || !(error instanceof SeqtuneError)) throw error;
      counts.skipped++;
      options.onSkip?.(error);
      continue;
    }
    yield { record, line, ordinal };
  }
}

/** Every record of a file in memory: for small files (tests, parallel sets, eval sets). */
export async function readAllRecords(path: string, options: ReadOptions = {}): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const { record } of readRecords(path, options)) out.push(record);
  return out;
}

/**
 * Index-aligned files read in lockstep (multilingual Alpaca: one file per language, row i the same
 * example everywhere): yields row i of every file together. Different lengths are an error.
 * Invalid records are always errors here, since skipping one would misalign the rows.
 */
export async function* zipRecords(paths: Record<string, string>, options: ParseOptions = {}): AsyncGenerator<Record<string, SourcedRecord>> {
  const names = Object.keys(paths);
  const iterators = names.map((n) => readRecords(paths[n], options)[Symbol.asyncIterator]());
  try {
    yield* lockstep(names, paths, iterators);
  } finally {
    await Promise.all(iterators.map((it) => it.return(undefined)));
  }
}

async function* lockstep(
  names: string[],
  paths: Record<string, string>,
  iterators: AsyncIterator<SourcedRecord>[],
): AsyncGenerator<Record<string, SourcedRecord>> {
  for (;;) {
    const rows = await Promise.all(iterators.map((it) => it.next()));
    const done = rows.filter((r) => r.done).length;
    if (done === rows.length) return;
    if (done > 0) {
      const short = names.filter((_, i) => rows[i].done);
      const long = names.find((_, i) => !rows[i].done)!;
      const row = rows.find((r) => !r.done)!.value as SourcedRecord;
      throw new SeqtuneError(
        `parallel files are not index-aligned: ${short.map((n) => paths[n]).join(', ')} ended before row ${row.ordinal} of ${paths[long]} (line ${row.line})`,
        'ERR_DATA',
      );
    }
    const out: Record<string, SourcedRecord> = {};
    names.forEach((n, i) => (out[n] = rows[i].value as SourcedRecord));
    yield out;
  }
}
