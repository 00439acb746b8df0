/**
 * `seqtune demo` over a grid of model sizes, token budgets and SIT mixtures: where does SIT beat IT?
 *   npx tsc -p . && node dist/bench/demo-sweep.js [--presets cpu-small,cpu] [--budgets 1250000,5000000]
 *     [--seq-fractions 0.5,0.25] [--seed N] [--items N]
 *   node dist/bench/demo-sweep.js --table [FILE]   the README's markdown table of a sweep file's cells
 * Each cell is a full demo run (its folders under the system temp dir). Prints SIT − IT per split
 * (exact match, format-free and strict following, 95% intervals) and merges the cells into
 * bench/results/<date>-demo-sweep.json, replacing a cell run again with the same settings, so a
 * long sweep can be run as several commands. IT is the peer: `<metric>_ratio` is SIT / IT (null
 * where IT scores 0).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DemoReport, runDemo } from '../lib/demo';
import { devices, packageVersion } from '../lib/device';
import { packageRoot } from '../lib/native';

interface Cell {
  key: string;
  command: string;
  preset: string;
  params: number;
  tokenBudget: number;
  seqFraction: number;
  seed: number;
  wallSeconds: number;
  device: { cpu: string | undefined; threads: number; loadAverage: number[] };
  splits: Record<string, Record<string, number | null | [number, number]>>;
  report: DemoReport;
}

const pct = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;
const ratio = (ours: number, peer: number) => (peer > 0 ? ours / peer : null);
const list = (text: string) => text.split(',').map((s) => s.trim()).filter(Boolean);

function summarise(report: DemoReport): Cell['splits'] {
  return Object.fromEntries(
    report.splits.map((s) => [
      s.name,
      {
        n: s.n,
        ...Object.fromEntries(
          (Object.keys(s.it) as Array<keyof typeof s.it>).flatMap((m) => [
            [`${m}_it`, s.it[m]],
            [`${m}_sit`, s.sit[m]],
            [`${m}_diff`, s.diff[m]],
            [`${m}_ci95`, s.diff.ci95[m]],
            [`${m}_ratio`, ratio(s.sit[m], s.it[m])],
          ]),
        ),
      },
    ]),
  );
}

const pct1 = (v: unknown) => (typeof v === 'number' ? (100 * v).toFixed(1) : '-');
const star = (ci: unknown) => (Array.isArray(ci) && (ci[0] > 0 || ci[1] < 0) ? '*' : '');

/**
 * One row per cell; per split, exact match IT → SIT, format-free following IT → SIT (cells run
 * since it was measured) and strict following IT → SIT; `*` marks a
 * SIT − IT difference whose 95% interval excludes 0 (the intervals are in the JSON).
 */
function markdownTable(cells: Cell[]): string {
  const sorted = [...cells].sort((a, b) => a.params - b.params || a.tokenBudget - b.tokenBudget || b.seqFraction - a.seqFraction);
  const splits = [...new Set(sorted.flatMap((c) => Object.keys(c.splits)))];
  const rows = [
    `| model | tokens per model | SIT share | ${splits.map((n) => `${n}: EM IT → SIT; [follow IT → SIT;] strict IT → SIT`).join(' | ')} |`,
    `|---|---:|---:|${splits.map(() => '---').join('|')}|`,
  ];
  for (const c of sorted) {
    const parts = splits.map((n) => {
      const s = c.splits[n];
      if (!s) return '';
      const free = s.followingAnyFormat_it === undefined ? '' : `; ${pct1(s.followingAnyFormat_it)} → ${pct1(s.followingAnyFormat_sit)}${star(s.followingAnyFormat_ci95)}`;
      return `${pct1(s.exactMatch_it)} → ${pct1(s.exactMatch_sit)}${star(s.exactMatch_ci95)}${free}; ${pct1(s.followingRate_it)} → ${pct1(s.followingRate_sit)}${star(s.followingRate_ci95)}`;
    });
    rows.push(`| ${c.preset} (${(c.params / 1e6).toFixed(2)}M) | ${c.tokenBudget / 1e6}M | ${c.seqFraction} | ${parts.join(' | ')} |`);
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { presets: { type: 'string' }, budgets: { type: 'string' }, 'seq-fractions': { type: 'string' }, seed: { type: 'string' }, items: { type: 'string' }, table: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.table) {
    const file = positionals[0] ?? path.join(packageRoot, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-demo-sweep.json`);
    console.log(markdownTable(JSON.parse(fs.readFileSync(file, 'utf8')).cells));
    return;
  }
  const presets = list(values.presets ?? 'cpu');
  const budgets = list(values.budgets ?? '1250000,2500000,5000000').map(Number);
  const fractions = list(values['seq-fractions'] ?? '0.25').map(Number);
  const seed = Number(values.seed ?? 0);
  const items = values.items === undefined ? undefined : Number(values.items);
  const file = path.join(packageRoot, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-demo-sweep.json`);
  const previous: Cell[] = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).cells : [];
  const cells = new Map(previous.map((c) => [c.key, c]));
  for (const preset of presets) {
    for (const tokenBudget of budgets) {
      for (const seqFraction of fractions) {
        const out = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-demo-sweep-'));
        const command = `seqtune demo --preset ${preset} --token-budget ${tokenBudget} --seq-fraction ${seqFraction} --seed ${seed}${items ? ` --items ${items}` : ''}`;
        const report = await runDemo({ preset, tokenBudget, seqFraction, seed, items, out, device: 'cpu', command });
        fs.rmSync(out, { recursive: true, force: true });
        const key = `${preset}/${tokenBudget}/${seqFraction}/${seed}/${report.splits[0].n}`;
        const device = { cpu: os.cpus()[0]?.model, threads: devices().cpuThreads, loadAverage: os.loadavg() };
        cells.set(key, { key, command, preset, params: report.params, tokenBudget, seqFraction, seed, wallSeconds: report.wallSeconds, device, splits: summarise(report), report });
        const row = report.splits.map((s) => `${s.name} EM ${pct(s.diff.exactMatch)} [${pct(s.diff.ci95.exactMatch[0])}, ${pct(s.diff.ci95.exactMatch[1])}] follow ${pct(s.diff.followingRate)}`);
        console.log(`${key}: ${row.join('; ')}  [${report.wallSeconds.toFixed(0)} s]`);
        // written after every cell, so an interrupted sweep keeps what it measured
        const result = { date: new Date().toISOString(), command: 'node dist/bench/demo-sweep.js (per cell: its command)', version: packageVersion(), cells: [...cells.values()] };
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      }
    }
  }
  console.log(`wrote ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
