/**
 * The per-item results file an eval run writes (`results.jsonl`): one line per item with its id,
 * prompt, output, extracted answer and scores. It doubles as a predictions file ({id, output}).
 */
import { join } from 'node:path';
import { asObject, dataError, stringField, Where } from './files';
import { readLog } from './jsonl-log';

export const RESULTS_FILE = 'results.jsonl';
export const SUMMARY_FILE = 'summary.json';
export const RUN_FILE = 'run.json';

export interface ResultRecord {
  id: string;
  group: string;
  /** the rendered prompt; null when scored from a predictions file that had none */
  prompt: string | null;
  output: string;
  extracted: string | null;
  correct: boolean | null;
  followed: boolean | null;
  gold: string | null;
}

export interface SourcedResult {
  record: ResultRecord;
  line: number;
}

export const resultsPath = (runDir: string) => join(runDir, RESULTS_FILE);

function nullable<T>(obj: Record<string, unknown>, key: string, type: 'string' | 'boolean', at: Where): T | null {
  const v = obj[key];
  if (v === null) return null;
  if (typeof v !== type) throw dataError(at, `field '${key}' must be a ${type} or null, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
  return v as T;
}

/** Reads and validates a results file; duplicate ids are an error. `repair` as in readLog. */
export async function readResults(file: string, repair: boolean): Promise<SourcedResult[]> {
  const values = await readLog(file, repair);
  const seen = new Map<string, number>();
  const results = values.map(({ value, line, at }) => {
    const obj = asObject(value, at);
    const record: ResultRecord = {
      id: stringField(obj, 'id', at),
      group: stringField(obj, 'group', at),
      prompt: nullable<string>(obj, 'prompt', 'string', at),
      output: stringField(obj, 'output', at),
      extracted: nullable<string>(obj, 'extracted', 'string', at),
      correct: nullable<boolean>(obj, 'correct', 'boolean', at),
      followed: nullable<boolean>(obj, 'followed', 'boolean', at),
      gold: nullable<string>(obj, 'gold', 'string', at),
    };
    const first = seen.get(record.id);
    if (first !== undefined) throw dataError(at, `duplicate id '${record.id}' (first on line ${first})`);
    seen.set(record.id, line);
    return { record, line };
  });
  return results;
}
