/**
 * What every benchmark reports with: the device it ran on, timing (medianSeconds), the printed
 * table, rounding, and the result file bench/results/<date>-<name>.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { devices } from '../../lib/device';
import { packageRoot } from '../../lib/native';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Wall and CPU seconds of fn (CPU: user + system of this process). */
export async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return { value, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

/**
 * Median seconds of fn: `warmup` untimed runs, then timed runs until at least `minRuns` and
 * `minMs` milliseconds, at most `maxRuns`. The upper median of an even count.
 */
export async function medianSeconds(
  fn: () => unknown,
  options: { warmup?: number; minRuns?: number; minMs?: number; maxRuns?: number } = {},
): Promise<number> {
  const { warmup = 2, minRuns = 5, minMs = 500, maxRuns = 64 } = options;
  const times: number[] = [];
  const start = performance.now();
  for (let rep = -warmup; rep < maxRuns && (rep < minRuns || performance.now() - start < minMs); rep++) {
    const t0 = performance.now();
    await fn();
    if (rep >= 0) times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export interface DeviceDescription {
  device: string;
  name: string;
  compute_capability: string | null;
  cuda_runtime: string | null;
  driver: string | null;
}

/** Resolves --device (a usable GPU, or cpu); throws with the reason when the GPU is not usable. */
export function describeDevice(spec: string): DeviceDescription {
  const report = devices();
  if (spec === 'cpu') return { device: 'cpu', name: `cpu (${report.cpuThreads} threads)`, compute_capability: null, cuda_runtime: null, driver: null };
  const index = Number(/^cuda:(\d+)$/.exec(spec)?.[1] ?? NaN);
  const gpu = report.gpus.find((g) => g.index === index);
  if (!gpu?.usable) {
    const why = report.cuda.unusableReason ?? gpu?.reason ?? `no GPU ${spec}`;
    throw new Error(`${spec} is not usable (${why}); use --device cpu for a CPU run`);
  }
  return { device: spec, name: gpu.name, compute_capability: gpu.computeCapability, cuda_runtime: report.cuda.runtimeVersion, driver: report.cuda.driverVersion };
}

/** $OUT/<name>.json on the device machine, else bench/results/<date>-<name>.json. */
export function resultFile(name: string): string {
  const out = process.env.OUT;
  const file = out ? path.join(out, `${name}.json`) : path.join(packageRoot, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-${name}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return file;
}

/**
 * The self-tested Hopper kernels' states on a GPU after the measurements ("on" where the run used
 * them; null on the CPU and on GPUs without them): which kernels a result is of. Only meaningful in
 * the process that ran the kernels: a benchmark's child reports it with its result (see
 * kernelsOfChildren), since the parent never launches them and reads "untested".
 */
export function hopperKernelsNow(device: string): Record<string, string> | null {
  const index = Number(/^cuda:(\d+)$/.exec(device)?.[1] ?? NaN);
  const kernels = devices().gpus.find((g) => g.index === index)?.hopperKernels;
  return kernels && Object.keys(kernels).length ? kernels : null;
}

export type KernelStates = Record<string, string> | null;

/** The states the children reported (undefined: a child that failed): their common value, else per row. */
export function kernelsOfChildren(reports: Array<KernelStates | undefined>): KernelStates | 'differs per row' | 'no child reported' {
  const seen = reports.filter((r): r is KernelStates => r !== undefined);
  if (seen.length === 0) return 'no child reported';
  const first = JSON.stringify(seen[0]);
  return seen.every((r) => JSON.stringify(r) === first) ? seen[0] : 'differs per row';
}

/** One table cell: each kernel's state without the reason ("gemm on, attentionForward off"); - for none. */
export function kernelsCell(states: KernelStates | undefined): string {
  if (!states) return '-';
  return Object.entries(states)
    .map(([name, state]) => `${name} ${state.split(':')[0]}`)
    .join(', ');
}

/**
 * Writes resultFile(name): the date, the command line, the device, then `body`; says where.
 * device.hopper_kernels is `kernels` (what the children that ran the kernels reported) when given,
 * else this process's own states.
 */
export function writeResult(name: string, device: DeviceDescription, body: Record<string, unknown>, kernels?: ReturnType<typeof kernelsOfChildren>): void {
  const file = resultFile(name);
  const withKernels = { ...device, hopper_kernels: kernels === undefined ? hopperKernelsNow(device.device) : kernels };
  const result = { date: new Date().toISOString(), command: commandLine(), device: withKernels, ...body };
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

export function commandLine(): string {
  return [path.basename(process.argv0), ...process.argv.slice(1).map((a) => path.relative(process.cwd(), a) || a)].join(' ');
}

export function table(header: string[], rows: Array<Array<string | number | null>>): void {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  for (const [n, r] of cells.entries()) {
    console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

export const round = (x: number | null | undefined, digits = 3): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toPrecision(digits));

/** x with `decimals` digits after the point (null stays null). */
export function roundTo(x: number, decimals: number): number;
export function roundTo(x: number | null, decimals: number): number | null;
export function roundTo(x: number | null, decimals: number): number | null {
  return x === null ? null : Math.round(x * 10 ** decimals) / 10 ** decimals;
}

/** Writes `report` as resultFile(name) and says where. */
export function writeJson(name: string, report: unknown): void {
  const file = resultFile(name);
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
