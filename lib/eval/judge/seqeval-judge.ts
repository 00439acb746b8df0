/**
 * SeqEval judging: a following verdict per item and, with a reference outputs file, a pairwise
 * preference judged in both orders (method and how it differs from the paper: prompts/README.md).
 * Verdicts are appended to `judge.jsonl` in outDir as they arrive, so an interrupted judging run
 * resumes: items with a verdict (including refused or malformed ones) are not asked again; items
 * whose request failed are. `judge-summary.json` holds the counts, overall and per chain depth.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { EvalItem } from '../bench';
import { resolveBench } from '../benches';
import { asObject, dataError, stringField, Where, writeFileAtomic } from '../files';
import { appendLog, readLog } from '../jsonl-log';
import { readPredictions } from '../predictions';
import { loadItems } from '../run';
import { ChatOutcome, ClientStats, JudgeClient, JudgeClientOptions } from './client';
import { loadPrompt, promptMessages } from './prompts';
import { parseFollowVerdict, parsePairVerdict, StepVerdict } from './verdicts';

export const JUDGE_FILE = 'judge.jsonl';
export const JUDGE_SUMMARY_FILE = 'judge-summary.json';

export type JudgeKind = 'follow' | 'pair-ab' | 'pair-ba';
const KINDS: readonly JudgeKind[] = ['follow', 'pair-ab', 'pair-ba'];

/** One line of judge.jsonl. `status` is a verdict, 'refused', 'malformed' or 'error'. */
export interface JudgeRecord {
  id: string;
  kind: JudgeKind;
  status: string;
  reason?: string;
  subInstructions?: string[];
  steps?: StepVerdict[];
  timedOut?: boolean;
  attempts: number;
  /** the judge's reply, API key masked */
  reply?: string;
}

export interface JudgeSeqEvalOptions extends JudgeClientOptions {
  dataFile: string;
  /** the model's outputs: a predictions file or an eval run's results.jsonl */
  predictionsFile: string;
  outDir: string;
  /** reference outputs (same predictions format) for the pairwise win rate */
  referenceFile?: string;
  limit?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface FollowCounts {
  n: number;
  followed: number;
  notFollowed: number;
  refused: number;
  malformed: number;
  errors: number;
  timedOut: number;
  /** followed / (followed + notFollowed); null when nothing was judged */
  followRate: number | null;
  /** followed / n: every unjudged item counted as not followed */
  followRateOfAll: number | null;
}

export interface PairCounts {
  n: number;
  /** items with a valid verdict in both orders */
  valid: number;
  wins: number;
  losses: number;
  ties: number;
  /** the two orders preferred different responses (counted among ties) */
  inconsistent: number;
  refused: number;
  malformed: number;
  errors: number;
  winRate: number | null;
}

export interface JudgeSummary {
  judgeModel: string;
  follow: { overall: FollowCounts; groups: Record<string, FollowCounts> };
  pairwise: { overall: PairCounts; groups: Record<string, PairCounts> } | null;
  /** this invocation's requests */
  requests: ClientStats;
}

function parseRecord(value: unknown, at: Where, known: Set<string>): JudgeRecord {
  const obj = asObject(value, at);
  const id = stringField(obj, 'id', at);
  if (!known.has(id)) throw dataError(at, `id '${id}' is not a SeqEval item`);
  const kind = stringField(obj, 'kind', at) as JudgeKind;
  if (!KINDS.includes(kind)) throw dataError(at, `unknown judgment kind '${kind}'`);
  stringField(obj, 'status', at);
  return obj as unknown as JudgeRecord;
}

/** Latest record per (id, kind): a failed request may be followed by a later verdict. */
async function readJudgeLog(file: string, known: Set<string>, repair: boolean): Promise<Map<string, JudgeRecord>> {
  const latest = new Map<string, JudgeRecord>();
  for (const { value, at } of await readLog(file, repair)) {
    const record = parseRecord(value, at, known);
    latest.set(`${record.kind}\u0000${record.id}`, record);
  }
  return latest;
}

/** The follow verdicts of a run folder (id → followed, null when unjudged), or null when it has no judge.jsonl. */
export async function readFollowVerdicts(runDir: string): Promise<Map<string, boolean | null> | null> {
  const file = join(runDir, JUDGE_FILE);
  const values = await readLog(file, false);
  if (values.length === 0) return null;
  const verdicts = new Map<string, boolean | null>();
  for (const { value, at } of values) {
    const obj = asObject(value, at);
    if (obj.kind !== 'follow') continue;
    const status = stringField(obj, 'status', at);
    verdicts.set(stringField(obj, 'id', at), status === 'followed' ? true : status === 'not-followed' ? false : null);
  }
  return verdicts;
}

function errorRecord(id: string, kind: JudgeKind, outcome: Extract<ChatOutcome, { kind: 'error' }>): JudgeRecord {
  return { id, kind, status: 'error', reason: outcome.message, timedOut: outcome.timedOut, attempts: outcome.attempts };
}

function followCounts(items: EvalItem[], records: Map<string, JudgeRecord>): FollowCounts {
  const c = { n: items.length, followed: 0, notFollowed: 0, refused: 0, malformed: 0, errors: 0, timedOut: 0 };
  for (const item of items) {
    const r = records.get(`follow\u0000${item.id}`);
    if (!r) continue;
    if (r.status === 'followed') c.followed++;
    else if (r.status === 'not-followed') c.notFollowed++;
    else if (r.status === 'refused') c.refused++;
    else if (r.status === 'malformed') c.malformed++;
    else if (r.status === 'error') {
      c.errors++;
      if (r.timedOut) c.timedOut++;
    }
  }
  const judged = c.followed + c.notFollowed;
  return { ...c, followRate: judged ? c.followed / judged : null, followRateOfAll: c.n ? c.followed / c.n : null };
}

/** The model's score in one order: it is A in pair-ab and B in pair-ba. */
function orderScore(record: JudgeRecord | undefined, modelIs: 'A' | 'B'): number | null {
  if (!record || !['A', 'B', 'tie'].includes(record.status)) return null;
  return record.status === 'tie' ? 0.5 : record.status === modelIs ? 1 : 0;
}

function pairCounts(items: EvalItem[], records: Map<string, JudgeRecord>): PairCounts {
  const c = { n: items.length, valid: 0, wins: 0, losses: 0, ties: 0, inconsistent: 0, refused: 0, malformed: 0, errors: 0 };
  let total = 0;
  for (const item of items) {
    const ab = records.get(`pair-ab\u0000${item.id}`);
    const ba = records.get(`pair-ba\u0000${item.id}`);
    for (const r of [ab, ba]) {
      if (r?.status === 'refused') c.refused++;
      else if (r?.status === 'malformed') c.malformed++;
      else if (r?.status === 'error') c.errors++;
    }
    const first = orderScore(ab, 'A');
    const second = orderScore(ba, 'B');
    if (first === null || second === null) continue;
    c.valid++;
    total += (first + second) / 2;
    if (first === 1 && second === 1) c.wins++;
    else if (first === 0 && second === 0) c.losses++;
    else {
      c.ties++;
      if (Math.abs(first - second) === 1) c.inconsistent++;
    }
  }
  return { ...c, winRate: c.valid ? total / c.valid : null };
}

function byGroup<T>(items: EvalItem[], count: (items: EvalItem[]) => T): Record<string, T> {
  const groups: Record<string, T> = {};
  for (const g of [...new Set(items.map((i) => i.group))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))) groups[g] = count(items.filter((i) => i.group === g));
  return groups;
}

export async function judgeSeqEval(options: JudgeSeqEvalOptions): Promise<JudgeSummary> {
  const client = new JudgeClient(options);
  const bench = resolveBench('seqeval');
  const { all, items } = await loadItems(bench, options.dataFile, {}, options.limit);
  const outputs = await readPredictions(options.predictionsFile, all, items);
  const reference = options.referenceFile === undefined ? null : await readPredictions(options.referenceFile, all, items);
  const followPrompt = await loadPrompt('seqeval-follow.txt', ['instruction', 'response']);
  const pairPrompt = reference ? await loadPrompt('seqeval-pairwise.txt', ['instruction', 'response_a', 'response_b']) : null;

  await mkdir(options.outDir, { recursive: true });
  const file = join(options.outDir, JUDGE_FILE);
  const records = await readJudgeLog(file, new Set(all.map((i) => i.id)), true);
  const instructions = new Map(all.map((i) => [i.id, bench.prompt(i).user]));

  type Task = { id: string; kind: JudgeKind };
  const tasks: Task[] = [];
  for (const item of items) {
    for (const kind of reference ? KINDS : (['follow'] as const)) {
      const done = records.get(`${kind}\u0000${item.id}`);
      if (!done || done.status === 'error') tasks.push({ id: item.id, kind });
    }
  }

  let appended = Promise.resolve();
  let finished = 0;
  options.onProgress?.(0, tasks.length);
  await Promise.all(
    tasks.map(async ({ id, kind }) => {
      const instruction = instructions.get(id)!;
      const output = outputs.get(id)!.output;
      let record: JudgeRecord;
      if (kind === 'follow') {
        const outcome = await client.complete(promptMessages(followPrompt, { instruction, response: output }));
        if (outcome.kind === 'error') record = errorRecord(id, kind, outcome);
        else {
          const verdict = parseFollowVerdict(outcome);
          record = { id, kind, attempts: outcome.attempts, reply: outcome.content, ...verdict };
        }
      } else {
        const ref = reference!.get(id)!.output;
        const [a, b] = kind === 'pair-ab' ? [output, ref] : [ref, output];
        const outcome = await client.complete(promptMessages(pairPrompt!, { instruction, response_a: a, response_b: b }));
        if (outcome.kind === 'error') record = errorRecord(id, kind, outcome);
        else record = { id, kind, attempts: outcome.attempts, reply: outcome.content, ...parsePairVerdict(outcome) };
      }
      records.set(`${kind}\u0000${id}`, record);
      // appends are chained so lines from concurrent requests never interleave
      appended = appended.then(() => appendLog(file, [record]));
      await appended;
      options.onProgress?.(++finished, tasks.length);
    }),
  );

  const summary: JudgeSummary = {
    judgeModel: options.model,
    follow: { overall: followCounts(items, records), groups: byGroup(items, (g) => followCounts(g, records)) },
    pairwise: reference ? { overall: pairCounts(items, records), groups: byGroup(items, (g) => pairCounts(g, records)) } : null,
    requests: client.stats(),
  };
  await writeFileAtomic(join(options.outDir, JUDGE_SUMMARY_FILE), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);

export function formatJudgeSummary(s: JudgeSummary): string {
  const lines = [`SeqEval judged by ${s.judgeModel} (${s.requests.requests} requests, ${s.requests.retries} retries, ${s.requests.timeouts} timeouts)`];
  const follow = (name: string, c: FollowCounts) =>
    `${name.padEnd(8)} following rate ${pct(c.followRate)} of judged (${pct(c.followRateOfAll)} of all ${c.n}); followed ${c.followed}, not ${c.notFollowed}, refused ${c.refused}, malformed ${c.malformed}, errors ${c.errors} (timeouts ${c.timedOut})`;
  for (const [g, c] of Object.entries(s.follow.groups)) lines.push(follow(g, c));
  lines.push(follow('overall', s.follow.overall));
  if (s.pairwise) {
    const pair = (name: string, c: PairCounts) =>
      `${name.padEnd(8)} win rate ${pct(c.winRate)} over ${c.valid} of ${c.n}; wins ${c.wins}, losses ${c.losses}, ties ${c.ties} (inconsistent ${c.inconsistent}); refused ${c.refused}, malformed ${c.malformed}, errors ${c.errors}`;
    lines.push('pairwise vs reference, judged in both orders (an LLM-judge preference, not the paper\'s reward-model win rate):');
    for (const [g, c] of Object.entries(s.pairwise.groups)) lines.push(pair(g, c));
    lines.push(pair('overall', s.pairwise.overall));
  }
  return lines.join('\n');
}
