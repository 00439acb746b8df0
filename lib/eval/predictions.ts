/**
 * Scoring outputs that already exist. A predictions file is JSONL (or a JSON array) of
 * {"id": ..., "output": "..."}; id is the item's id (a string) or its 0-based index in the data
 * (an integer). Other fields are ignored, so an eval run's results.jsonl is a predictions file.
 * Every evaluated item (the first `limit` ones, when given) needs exactly one prediction; predictions
 * for items beyond the limit are ignored. Unknown, duplicate and missing ids are errors naming
 * file:line (for a missing one, the item's line in the data file).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchOptions, EvalItem } from './bench';
import { resolveBench } from './benches';
import { asObject, dataError, readJsonRecords, writeFileAtomic } from './files';
import { ResultRecord, RESULTS_FILE, SUMMARY_FILE } from './results';
import { loadItems, scoredRecord, summaryRows } from './run';
import { EvalSummary, summarize } from './summary';

export interface Prediction {
  output: string;
  /** the prompt the prediction carries (results.jsonl has one), else null */
  prompt: string | null;
  line: number;
}

/** Predictions keyed by item id, checked against all items; every `expected` item must have one. */
export async function readPredictions(file: string, all: EvalItem[], expected: EvalItem[] = all): Promise<Map<string, Prediction>> {
  const known = new Set(all.map((item) => item.id));
  const found = new Map<string, Prediction>();
  for (const { value, line, at } of await readJsonRecords(file)) {
    const obj = asObject(value, at);
    const raw = obj.id;
    let id: string;
    if (typeof raw === 'string') id = raw;
    else if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw < all.length) id = all[raw].id;
    else throw dataError(at, `'id' must be an item id (string) or a 0-based index below ${all.length}, got ${raw === undefined ? 'nothing' : JSON.stringify(raw)}`);
    if (!known.has(id)) throw dataError(at, `unknown id '${id}': no such item in the data`);
    const previous = found.get(id);
    if (previous) throw dataError(at, `duplicate prediction for id '${id}' (first on line ${previous.line})`);
    if (typeof obj.output !== 'string') throw dataError(at, `'output' must be a string, got ${obj.output === undefined ? 'nothing' : JSON.stringify(obj.output)}`);
    found.set(id, { output: obj.output, prompt: typeof obj.prompt === 'string' ? obj.prompt : null, line });
  }
  const missing = expected.filter((item) => !found.has(item.id));
  if (missing.length > 0) {
    const first = missing[0];
    throw dataError(first, `item '${first.id}' has no prediction in ${file}${missing.length > 1 ? ` (${missing.length} items have none)` : ''}`);
  }
  return found;
}

export interface ScorePredictionsOptions {
  bench: string;
  dataFile: string;
  predictionsFile: string;
  benchOptions?: BenchOptions;
  limit?: number;
  /** when given, results.jsonl and summary.json are written there (so the run can be compared) */
  outDir?: string;
}

export interface ScorePredictionsResult {
  summary: EvalSummary;
  records: ResultRecord[];
}

export async function scorePredictions(options: ScorePredictionsOptions): Promise<ScorePredictionsResult> {
  const bench = resolveBench(options.bench);
  const { all, items } = await loadItems(bench, options.dataFile, options.benchOptions ?? {}, options.limit);
  const predictions = await readPredictions(options.predictionsFile, all, items);
  const records = items.map((item) => {
    const p = predictions.get(item.id)!;
    return scoredRecord(bench, item, p.prompt, p.output);
  });
  const outputs = new Map(records.map((r) => [r.id, r.output]));
  const summary = summarize(options.bench, options.dataFile, summaryRows(bench, items, outputs), bench.averages);
  if (options.outDir !== undefined) {
    await mkdir(options.outDir, { recursive: true });
    await writeFileAtomic(join(options.outDir, RESULTS_FILE), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await writeFileAtomic(join(options.outDir, SUMMARY_FILE), `${JSON.stringify(summary, null, 2)}\n`);
  }
  return { summary, records };
}
