/**
 * Every op on every usable GPU against the CPU, without tap (the GPU machine gets only the
 * production node_modules): prints a table of failures, a `N passed, N failed, N skipped` line,
 * and writes bench/results/<date>-parity.json (or $OUT/parity.json on the device machine).
 * `--device cpu` runs the same harness CPU against CPU: a quick check of the script and of the
 * compiled cases (dist/test/cases) on a machine without a GPU; it proves nothing about kernels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { devices } from '../lib/device';
import { HostRng } from '../lib/rng';
import { loadCases, runParity } from '../test/helpers/parity';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { device: { type: 'string' } } });
  const report = devices();
  const gpus =
    values.device === 'cpu'
      ? [{ index: -1, name: `cpu (${report.cpuThreads} threads)` }]
      : report.gpus.filter((g) => g.usable && (!values.device || `cuda:${g.index}` === values.device));
  if (gpus.length === 0) {
    console.log(`no usable GPU (${report.cuda.unusableReason ?? 'none found'}); nothing to compare`);
    return 0;
  }
  const seed = Number(process.env.SEQTUNE_TEST_SEED ?? (Date.now() >>> 0));
  console.log(`seed ${seed}`);
  const results = [];
  let failed = 0;
  for (const gpu of gpus) {
    const device = gpu.index < 0 ? 'cpu' : `cuda:${gpu.index}`;
    const outcomes = await runParity(loadCases(new HostRng(seed)), device);
    for (const o of outcomes.filter((x) => x.status === 'fail')) console.log(`FAIL ${device} ${o.name} [${o.dtype}]: ${o.detail}`);
    const count = (s: string) => outcomes.filter((o) => o.status === s).length;
    console.log(`${device} ${gpu.name}: ${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`);
    failed += count('fail');
    results.push({ device, name: gpu.name, passed: count('pass'), failed: count('fail'), skipped: count('skip'), outcomes });
  }
  const file = process.env.OUT
    ? path.join(process.env.OUT, 'parity.json')
    : path.join(__dirname, '..', '..', 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-parity.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), command: commandLine(), seed, results }, null, 2));
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
  return failed > 0 ? 1 : 0;
}

function commandLine(): string {
  return [path.basename(process.argv0), ...process.argv.slice(1).map((a) => path.relative(process.cwd(), a) || a)].join(' ');
}

main().then((code) => (process.exitCode = code));
