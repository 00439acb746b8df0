/**
 * Reading eval files (a JSON array or JSONL, told apart by the first non-blank character) into
 * values that remember the line they start on, so every data error can name file:line. Eval sets
 * are a few MB, so a file is read whole. Also small helpers for typed field access and atomic writes.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { SeqtuneError } from '../errors';

/** Where a record is, for error messages. */
export interface Where {
  file: string;
  /** 1-based line where the record starts */
  line: number;
  /** 0-based position in a JSON array: named in messages, since such files often hold every record on one line */
  record?: number;
}

export interface SourcedValue {
  value: unknown;
  line: number;
  /** 0-based position among the file's records */
  index: number;
  at: Where;
}

// The helpers below also take (file, line) instead of a Where: modules outside lib/eval
// (lib/demo/synthetic-bench.ts) were written against that form.
function whereOf(at: Where | string, line: number | undefined): Where {
  return typeof at === 'string' ? { file: at, line: line ?? 1 } : at;
}

/** ERR_DATA as "file:line: reason" ("file:line: record N: reason" inside a JSON array). */
export function dataError(at: Where, reason: string): SeqtuneError;
export function dataError(file: string, line: number, reason: string): SeqtuneError;
export function dataError(place: Where | string, second: number | string, third?: string): SeqtuneError {
  const at = whereOf(place, typeof second === 'number' ? second : undefined);
  const reason = typeof second === 'string' ? second : (third ?? '');
  return new SeqtuneError(`${at.file}:${at.line}: ${at.record === undefined ? '' : `record ${at.record}: `}${reason}`, 'ERR_DATA');
}

export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new SeqtuneError(`cannot read ${file}: ${(error as Error).message}`, 'ERR_IO');
  }
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** JSON.parse error messages carry a position in some Node versions and a line in others. */
function jsonErrorLine(text: string, error: Error): number {
  const lineCol = /line (\d+) column/.exec(error.message);
  if (lineCol) return Number(lineCol[1]);
  const pos = /position (\d+)/.exec(error.message);
  if (pos) return lineAt(text, Number(pos[1]));
  // "Unexpected end of JSON input": the file stops early, so blame its last line
  return lineAt(text, text.length);
}

/** Start offsets of the top-level elements of a JSON array already known to parse. */
function elementOffsets(text: string): number[] {
  const offsets: number[] = [];
  let depth = 0;
  let inString = false;
  let escape = false;
  let expectValue = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escape) escape = false;
      else if (c === '\\') escape = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
    if (depth === 1 && expectValue && c !== ']') {
      offsets.push(i);
      expectValue = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (depth === 1) expectValue = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectValue = true;
  }
  return offsets;
}

function parseJsonArray(file: string, text: string): SourcedValue[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw dataError({ file, line: jsonErrorLine(text, error as Error) }, `invalid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw dataError({ file, line: 1 }, 'expected a JSON array of records');
  const offsets = elementOffsets(text);
  let line = 1;
  let pos = 0;
  return parsed.map((value, index) => {
    // offsets ascend, so count newlines incrementally instead of from the start each time
    for (; pos < offsets[index]; pos++) if (text.charCodeAt(pos) === 10) line++;
    return { value, line, index, at: { file, line, record: index } };
  });
}

function parseJsonl(file: string, text: string): SourcedValue[] {
  const out: SourcedValue[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, '');
    if (raw.trim() === '') continue;
    try {
      out.push({ value: JSON.parse(raw), line: i + 1, index: out.length, at: { file, line: i + 1 } });
    } catch (error) {
      const truncated = i === lines.length - 1 ? ' (the file ends mid-record: truncated?)' : '';
      throw dataError({ file, line: i + 1 }, `invalid JSON${truncated}: ${(error as Error).message}`);
    }
  }
  return out;
}

/** Every record of a JSON-array or JSONL file, with its line. */
export async function readJsonRecords(file: string): Promise<SourcedValue[]> {
  const text = (await readText(file)).replace(/^\uFEFF/, '');
  return text.trimStart().startsWith('[') ? parseJsonArray(file, text) : parseJsonl(file, text);
}

export function asObject(value: unknown, at: Where): Record<string, unknown>;
export function asObject(value: unknown, file: string, line: number): Record<string, unknown>;
export function asObject(value: unknown, place: Where | string, line?: number): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw dataError(whereOf(place, line), 'expected a JSON object');
  return value as Record<string, unknown>;
}

export function stringField(obj: Record<string, unknown>, key: string, at: Where): string;
export function stringField(obj: Record<string, unknown>, key: string, file: string, line: number): string;
export function stringField(obj: Record<string, unknown>, key: string, place: Where | string, line?: number): string {
  const v = obj[key];
  if (typeof v !== 'string') throw dataError(whereOf(place, line), `field '${key}' must be a string, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
  return v;
}

export function numberField(obj: Record<string, unknown>, key: string, at: Where): number;
export function numberField(obj: Record<string, unknown>, key: string, file: string, line: number): number;
export function numberField(obj: Record<string, unknown>, key: string, place: Where | string, line?: number): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw dataError(whereOf(place, line), `field '${key}' must be a number, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
  return v;
}

/** Write via a temporary file and rename, so a reader never sees half a summary. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}
