/**
 * Training throughput of candidate demo model sizes on the demo's own SIT data (packed batches,
 * char-level tokens), to size `seqtune demo`'s default preset and budget:
 *   npx tsc -p . && node dist/bench/demo-measure.js [steps]
 * Reports tokens/s of wall time and tokens per CPU-second (process user+system time), because a
 * shared machine's wall time says little: on a dedicated machine with T threads, wall tokens/s is
 * about T times the per-CPU-second rate (less the threads' sync overhead). Writes
 * bench/results/<date>-demo-measure.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildDemoData } from '../lib/demo/data';
import { budgetedDataset, demoModelConfig, demoParams, DemoPreset, demoTokenizeOptions, demoTokenizer, initDemoModel, trainDemoModel } from '../lib/demo/model';
import { devices, packageVersion } from '../lib/device';
import { packageRoot } from '../lib/native';

const CANDIDATES: Array<{ name: string; preset: Omit<DemoPreset, 'tokenBudget' | 'lr'> }> = [
  { name: 'C64-L2/512', preset: { hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 176, batchTokens: 512 } },
  { name: 'C96-L3/512', preset: { hiddenSize: 96, numLayers: 3, numHeads: 4, intermediateSize: 256, batchTokens: 512 } },
  { name: 'C96-L3/2048', preset: { hiddenSize: 96, numLayers: 3, numHeads: 4, intermediateSize: 256, batchTokens: 2048 } },
  { name: 'C128-L4/512', preset: { hiddenSize: 128, numLayers: 4, numHeads: 8, intermediateSize: 352, batchTokens: 512 } },
  { name: 'C192-L4/512', preset: { hiddenSize: 192, numLayers: 4, numHeads: 6, intermediateSize: 512, batchTokens: 512 } },
];

async function main(): Promise<void> {
  const steps = Number(process.argv[2] ?? 40);
  const tokenizer = demoTokenizer();
  const data = buildDemoData({ seed: 0, words: [2, 4], evalWords: [2, 4], trainSteps: 3, seqFraction: 0.5, heldoutPhrasings: false, unseenTasks: [], heldoutPairCount: 5, items: 1 });
  const rows = [];
  for (const { name, preset: shape } of CANDIDATES) {
    const preset: DemoPreset = { ...shape, lr: 1e-3, tokenBudget: shape.batchTokens * steps };
    const dataset = budgetedDataset(data.trainRecords('sit'), demoTokenizeOptions(tokenizer), preset.tokenBudget);
    const config = demoModelConfig(preset, tokenizer);
    const model = initDemoModel(config, 0, 'cpu');
    // the first steps pay for allocation; time the rest
    let warm: { at: number; cpu: NodeJS.CpuUsage; tokens: number } | null = null;
    let last = { at: 0, cpu: process.cpuUsage(), tokens: 0 };
    await trainDemoModel(model, dataset, preset, 0, (m) => {
      last = { at: performance.now(), cpu: process.cpuUsage(), tokens: m.tokens };
      if (m.step === 2) warm = last;
    });
    for (const t of model.tensors().values()) t.dispose();
    if (!warm) throw new Error('too few steps to measure');
    const w = warm as { at: number; cpu: NodeJS.CpuUsage; tokens: number };
    const tokens = last.tokens - w.tokens;
    const wall = (last.at - w.at) / 1000;
    const cpu = (last.cpu.user - w.cpu.user + last.cpu.system - w.cpu.system) / 1e6;
    const row = { name, ...shape, params: demoParams(config), tokens, tokensPerSec: tokens / wall, tokensPerCpuSec: tokens / cpu, cpuPerWall: cpu / wall };
    rows.push(row);
    console.log(`${name.padEnd(12)} ${(row.params / 1e6).toFixed(2)}M params  ${row.tokensPerSec.toFixed(0).padStart(6)} tokens/s  ${row.tokensPerCpuSec.toFixed(0).padStart(6)} tokens/CPU-s  (CPU/wall ${row.cpuPerWall.toFixed(2)})`);
  }
  const report = {
    date: new Date().toISOString(),
    command: `node dist/bench/demo-measure.js ${steps}`,
    version: packageVersion(),
    device: { cpu: os.cpus()[0]?.model, threads: devices().cpuThreads, loadAverage: os.loadavg() },
    rows,
  };
  const file = path.join(packageRoot, 'bench', 'results', `${report.date.slice(0, 10)}-demo-measure.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
