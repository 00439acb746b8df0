/**
 * Every op on every usable GPU against the CPU, without tap (the GPU machine gets only the
 * production node_modules): prints a table of failures, a `N passed, N failed, N skipped` line,
 * and writes bench/results/<date>-parity.json (or $OUT/parity.json on the device machine).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { devices } from '../lib/device';
import { HostRng } from '../lib/rng';
import { loadCases, runParity } from '../test/helpers/parity';

async function main(): Promise<number> {
  const report = devices();
  const gpus = report.gpus.filter((g) => g.usable);
  if (gpus.length === 0) {
    console.log(`no usable GPU (${report.cuda.unusableReason ?? 'none found'}); nothing to compare`);
    return 0;
  }
  const seed = Number(process.env.SEQTUNE_TEST_SEED ?? (Date.now() >>> 0));
  console.log(`seed ${seed}`);
  const results = [];
  let failed = 0;
  for (const gpu of gpus) {
    const device = `cuda:${gpu.index}`;
    const outcomes = await runParity(loadCases(new HostRng(seed)), device);
    for (const o of outcomes.filter((x) => x.status === 'fail')) console.log(`FAIL ${device} ${o.name} [${o.dtype}]: ${o.detail}`);
    const count = (s: string) => outcomes.filter((o) => o.status === s).length;
    console.log(`${device} ${gpu.name}: ${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`);
    failed += count('fail');
    results.push({ device, name: gpu.name, outcomes });
  }
  const file = process.env.OUT
    ? path.join(process.env.OUT, 'parity.json')
    : path.join(__dirname, '..', '..', 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-parity.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), command: 'scripts/gpu.sh parity', seed, results }, null, 2));
  return failed > 0 ? 1 : 0;
}

main().then((code) => (process.exitCode = code));
