/**
 * `seqtune demo` over a grid of model sizes and token budgets: where does SIT beat IT?
 *   npx tsc -p . && node dist/bench/demo-sweep.js [--presets cpu-small,cpu] [--budgets 250000,1000000] [--seed N] [--items N]
 * Each cell is a full demo run (its folders under the system temp dir); the table of SIT − IT exact
 * match per split, with the 95% intervals, is printed and written to bench/results/<date>-demo.json
 * together with every cell's report.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DemoReport, runDemo } from '../lib/demo';
import { devices, packageVersion } from '../lib/device';
import { packageRoot } from '../lib/native';

const pct = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { presets: { type: 'string' }, budgets: { type: 'string' }, seed: { type: 'string' }, items: { type: 'string' } },
    strict: true,
  });
  const presets = (values.presets ?? 'cpu').split(',');
  const budgets = (values.budgets ?? '250000,500000,1000000').split(',').map(Number);
  const seed = Number(values.seed ?? 0);
  const items = values.items === undefined ? undefined : Number(values.items);
  const cells: DemoReport[] = [];
  const started = Date.now();
  for (const preset of presets) {
    for (const tokenBudget of budgets) {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-demo-sweep-'));
      const report = await runDemo({ preset, tokenBudget, seed, items, out, device: 'cpu', command: `demo-sweep cell --preset ${preset} --token-budget ${tokenBudget} --seed ${seed}` });
      fs.rmSync(out, { recursive: true, force: true });
      cells.push(report);
      const row = report.splits.map((s) => `${s.name} ${(100 * s.it.exactMatch).toFixed(1)}->${(100 * s.sit.exactMatch).toFixed(1)} (${pct(s.diff.exactMatch)} [${pct(s.diff.ci95.exactMatch[0])}, ${pct(s.diff.ci95.exactMatch[1])}])`);
      console.log(`${preset} ${tokenBudget}: ${row.join('; ')}  [${report.wallSeconds.toFixed(0)} s]`);
    }
  }
  const result = {
    date: new Date().toISOString(),
    command: `node dist/bench/demo-sweep.js ${process.argv.slice(2).join(' ')}`.trim(),
    version: packageVersion(),
    device: { cpu: os.cpus()[0]?.model, threads: devices().cpuThreads, loadAverage: os.loadavg() },
    wallSeconds: (Date.now() - started) / 1000,
    // exact match IT -> SIT per split and cell; the cells hold the full reports
    summary: cells.map((r) => ({
      preset: r.preset,
      params: r.params,
      tokenBudget: r.tokenBudget,
      splits: Object.fromEntries(r.splits.map((s) => [s.name, { it: s.it.exactMatch, sit: s.sit.exactMatch, diff: s.diff.exactMatch, ci95: s.diff.ci95.exactMatch }])),
    })),
    cells,
  };
  const file = path.join(packageRoot, 'bench', 'results', `${result.date.slice(0, 10)}-demo.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
