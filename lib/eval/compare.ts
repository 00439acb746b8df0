/**
 * IT vs SIT side by side: two run folders (results.jsonl + summary.json) of the same bench,
 * paired by item id, with B − A and a paired bootstrap 95% CI per metric, overall and per group.
 * The bootstrap resamples item indices with replacement (the same indices for A and B, which is
 * what makes it paired) from a seeded generator, so the CI is reproducible. For SeqEval, a run's
 * judge verdicts (judge.jsonl, see judge/seqeval-judge.ts) supply the follow metric.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { dataError } from './files';
import { readFollowVerdicts } from './judge/seqeval-judge';
import { readResults, ResultRecord, resultsPath, SUMMARY_FILE } from './results';

export interface BootstrapOptions {
  samples?: number;
  seed?: number;
  /** default 0.95 */
  confidence?: number;
}

export interface BootstrapResult {
  /** mean(b) − mean(a) on the observed pairs */
  diff: number;
  low: number;
  high: number;
}

/** Linear-interpolated quantile of sorted values. */
function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function pairedBootstrap(a: number[], b: number[], options: BootstrapOptions = {}): BootstrapResult {
  if (a.length !== b.length || a.length === 0) throw new SeqtuneError(`paired bootstrap needs two equally long non-empty samples, got ${a.length} and ${b.length}`, 'ERR_ARGUMENT');
  const samples = options.samples ?? 10000;
  const confidence = options.confidence ?? 0.95;
  if (!Number.isInteger(samples) || samples < 1) throw new SeqtuneError(`samples must be a positive integer, got ${samples}`, 'ERR_ARGUMENT');
  if (!(confidence > 0 && confidence < 1)) throw new SeqtuneError(`confidence must be in (0, 1), got ${confidence}`, 'ERR_ARGUMENT');
  const n = a.length;
  const d = a.map((x, i) => b[i] - x);
  const rng = new HostRng(options.seed ?? 0);
  const diffs = new Float64Array(samples);
  for (let s = 0; s < samples; s++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += d[rng.int(n)];
    diffs[s] = sum / n;
  }
  diffs.sort();
  const alpha = (1 - confidence) / 2;
  return { diff: d.reduce((x, y) => x + y, 0) / n, low: quantile(diffs, alpha), high: quantile(diffs, 1 - alpha) };
}

export type CompareMetric = 'accuracy' | 'followRate';

export interface MetricComparison {
  metric: CompareMetric;
  /** items scored on this metric in both runs */
  n: number;
  a: number;
  b: number;
  diff: number;
  ci: [number, number];
}

export interface RunComparison {
  bench: string;
  runA: string;
  runB: string;
  /** ids in both runs; the others are counted, not compared */
  paired: number;
  onlyInA: number;
  onlyInB: number;
  samples: number;
  seed: number;
  overall: MetricComparison[];
  groups: Record<string, MetricComparison[]>;
}

interface LoadedRun {
  bench: string;
  records: Map<string, ResultRecord>;
}

async function loadRun(runDir: string): Promise<LoadedRun> {
  const summaryFile = join(runDir, SUMMARY_FILE);
  const text = await readFile(summaryFile, 'utf8').catch(() => {
    throw new SeqtuneError(`${runDir} is not an eval run folder (no ${SUMMARY_FILE})`, 'ERR_ARGUMENT');
  });
  let bench: unknown;
  try {
    bench = (JSON.parse(text) as { bench?: unknown }).bench;
  } catch (error) {
    throw dataError({ file: summaryFile, line: 1 }, `invalid JSON: ${(error as Error).message}`);
  }
  if (typeof bench !== 'string') throw dataError({ file: summaryFile, line: 1 }, "no 'bench' name");
  const records = new Map((await readResults(resultsPath(runDir), false)).map(({ record }) => [record.id, record]));
  const verdicts = await readFollowVerdicts(runDir);
  if (verdicts) for (const record of records.values()) record.followed = verdicts.get(record.id) ?? null;
  return { bench, records };
}

function compareMetric(metric: CompareMetric, pairs: [ResultRecord, ResultRecord][], options: Required<Pick<BootstrapOptions, 'samples' | 'seed'>>): MetricComparison | null {
  const key = metric === 'accuracy' ? 'correct' : 'followed';
  const scored = pairs.filter(([a, b]) => a[key] !== null && b[key] !== null);
  if (scored.length === 0) return null;
  const a = scored.map(([x]) => (x[key] ? 1 : 0));
  const b = scored.map(([, y]) => (y[key] ? 1 : 0));
  const boot = pairedBootstrap(a, b, options);
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  return { metric, n: scored.length, a: mean(a), b: mean(b), diff: boot.diff, ci: [boot.low, boot.high] };
}

function compareAll(pairs: [ResultRecord, ResultRecord][], options: Required<Pick<BootstrapOptions, 'samples' | 'seed'>>): MetricComparison[] {
  return (['accuracy', 'followRate'] as const).map((m) => compareMetric(m, pairs, options)).filter((c): c is MetricComparison => c !== null);
}

export async function compareRuns(runA: string, runB: string, options: Omit<BootstrapOptions, 'confidence'> = {}): Promise<RunComparison> {
  const [a, b] = await Promise.all([loadRun(runA), loadRun(runB)]);
  if (a.bench !== b.bench) throw new SeqtuneError(`cannot compare a ${a.bench} run with a ${b.bench} run`, 'ERR_ARGUMENT');
  const pairs: [ResultRecord, ResultRecord][] = [];
  for (const [id, ra] of a.records) {
    const rb = b.records.get(id);
    if (rb) pairs.push([ra, rb]);
  }
  if (pairs.length === 0) throw new SeqtuneError(`${runA} and ${runB} share no item ids`, 'ERR_ARGUMENT');
  const boot = { samples: options.samples ?? 10000, seed: options.seed ?? 0 };
  const groups: Record<string, MetricComparison[]> = {};
  const groupNames = [...new Set(pairs.map(([ra]) => ra.group).filter((g) => g !== ''))].sort((x, y) => x.localeCompare(y, 'en', { numeric: true }));
  for (const g of groupNames) groups[g] = compareAll(pairs.filter(([ra]) => ra.group === g), boot);
  return {
    bench: a.bench,
    runA,
    runB,
    paired: pairs.length,
    onlyInA: a.records.size - pairs.length,
    onlyInB: b.records.size - pairs.length,
    ...boot,
    overall: compareAll(pairs, boot),
    groups,
  };
}

const pct = (v: number) => (100 * v).toFixed(1);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${pct(v)}`;

export function formatComparison(c: RunComparison): string {
  const lines = [
    `${c.bench}: A = ${c.runA}, B = ${c.runB}; ${c.paired} paired items${c.onlyInA || c.onlyInB ? ` (${c.onlyInA} only in A, ${c.onlyInB} only in B, not compared)` : ''}`,
    `paired bootstrap 95% CI, ${c.samples} resamples, seed ${c.seed}`,
    'group      metric          n      A      B   B-A   95% CI',
  ];
  const add = (group: string, cmp: MetricComparison[]) => {
    for (const m of cmp) {
      lines.push(`${group.padEnd(10)} ${m.metric.padEnd(10)} ${String(m.n).padStart(6)} ${pct(m.a).padStart(6)} ${pct(m.b).padStart(6)} ${signed(m.diff).padStart(5)}   [${signed(m.ci[0])}, ${signed(m.ci[1])}]`);
    }
  };
  for (const [g, cmp] of Object.entries(c.groups)) add(g, cmp);
  add('overall', c.overall);
  return lines.join('\n');
}
