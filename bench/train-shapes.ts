/**
 * What the training and generation benchmarks share (bench/train.ts, bench/generate.ts,
 * bench/train-parity.ts): the preset shapes (optionally cut to fewer layers), random weights made
 * directly on the device (no multi-GB checkpoint to write or carry), and running one measurement per child process (a
 * seqtune worker or a Python peer) so each starts with an empty GPU and its peak memory is its own;
 * also their common command-line options, time budget and result file.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { devices } from '../lib/device';
import { LinearName, linearNames } from '../lib/model/block';
import { modelConfigToJson, ModelConfig } from '../lib/model/config';
import { simpleTokenizerFiles, writeTokenizerFiles } from '../lib/model/io/simple-tokenizer';
import { expectedWeights } from '../lib/model/io/weights';
import { hfLinearName } from '../lib/model/llama';
import { isPresetName, presetConfig } from '../lib/model/presets';
import { packageRoot } from '../lib/native';
import { Rng } from '../lib/rng';
import { DType, full, randn, Tensor } from '../lib/tensor';
import { Batch, IGNORE_INDEX } from '../lib/data/batch';
import type { BatchStream } from '../lib/train/batches';
import type { LoopConfig } from '../lib/train/trainer';

export const ALL_TARGETS: LinearName[] = [...linearNames];
/** peft's names for ALL_TARGETS (q_proj, ..., down_proj), in the same order */
export const PEFT_TARGETS = ALL_TARGETS.map((t) => hfLinearName[t].split('.')[1]);

/** A preset's config, optionally with only `layers` decoder layers (a slice of the same shapes). */
export function benchConfig(preset: string, layers?: number): ModelConfig {
  if (!isPresetName(preset)) throw new Error(`unknown preset ${preset}`);
  const probe = presetConfig(preset, { bosTokenId: null, eosTokenId: 0 });
  const tok = simpleTokenizerFiles('byte', probe.vocabSize);
  const config = presetConfig(preset, { bosTokenId: tok.bosId, eosTokenId: tok.eosId, torchDtype: 'bfloat16' });
  if (layers !== undefined) {
    if (!Number.isInteger(layers) || layers < 1 || layers > config.numLayers) throw new Error(`--layers must be 1..${config.numLayers}`);
    config.numLayers = layers;
  }
  return config;
}

/** config.json and the byte tokenizer (no weights): what the Python peers build the same shapes from. */
export async function writeConfigDir(dir: string, config: ModelConfig): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(modelConfigToJson(config), null, 2));
  await writeTokenizerFiles(dir, simpleTokenizerFiles('byte', config.vocabSize, { maxLength: config.maxPositionEmbeddings }));
}

/** init-model's distribution (N(0, 0.02), norms 1), drawn on the device in the given dtype. */
export function randomWeights(config: ModelConfig, device: string, dtype: DType, rng: Rng): Map<string, Tensor> {
  const weights = new Map<string, Tensor>();
  for (const [name, shape] of expectedWeights(config)) {
    weights.set(name, name.endsWith('norm.weight') ? full(shape, 1, { dtype, device }) : randn(shape, { rng, std: 0.02, dtype, device }));
  }
  return weights;
}

/**
 * `batch` sequences of `seq` tokens (ids row-major) as one packed batch: one document per
 * sequence, labels shifted inside it, so the loss covers batch·(seq − 1) tokens exactly as
 * transformers' labels=input_ids on a [batch, seq] tensor.
 */
export function packedBatch(ids: Int32Array, batch: number, seq: number): Batch {
  if (ids.length !== batch * seq) throw new Error(`packedBatch: ${ids.length} ids for ${batch} x ${seq}`);
  const labels = new Int32Array(ids.length);
  const positionIds = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const t = i % seq;
    positionIds[i] = t;
    labels[i] = t + 1 < seq ? ids[i + 1] : IGNORE_INDEX;
  }
  const cuSeqlens = Int32Array.from({ length: batch + 1 }, (_, b) => b * seq);
  return { inputIds: ids, labels, positionIds, cuSeqlens, numLabelTokens: batch * (seq - 1), numDocuments: batch };
}

/** A BatchStream over batches made on demand (the trainer asks for exactly maxSteps of them). */
export function batchStream(make: (index: number) => Batch): BatchStream {
  let index = 0;
  return {
    next: () => make(index++),
    epoch: 0,
    batchesPerEpoch: () => Number.MAX_SAFE_INTEGER,
    state: () => ({ index }),
    restore: (state) => void (index = (state as { index: number }).index),
  };
}

/** The benchmarks' training loop: constant lr 1e-5, AdamW, clipping at 1, no evaluation or checkpoints. */
export function benchLoopConfig(maxSteps: number): LoopConfig {
  return {
    optimizer: { lr: 1e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
    schedule: { kind: 'constant', warmupSteps: 0 },
    epochs: 1,
    maxSteps,
    gradAccum: 1,
    maxGradNorm: 1,
    evalEvery: Number.MAX_SAFE_INTEGER,
    saveEvery: Number.MAX_SAFE_INTEGER,
    keepCheckpoints: 1,
  };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface ChildResult<T> {
  result?: T;
  error?: string;
}

/**
 * Runs a command that prints its result as the last line of stdout (JSON); stdin gets `input`,
 * stderr passes through (progress). A timeout, a crash or unparsable output becomes `error`.
 */
export function runChild<T>(command: string, args: string[], input: unknown, timeoutSec: number): ChildResult<T> {
  if (timeoutSec <= 0) return { error: 'skipped: the time budget (--deadline-s) is spent' };
  const run = spawnSync(command, args, {
    input: JSON.stringify(input),
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'inherit'],
    timeout: timeoutSec * 1000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 << 20,
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return { error: `timed out after ${Math.round(timeoutSec)} s` };
  if (run.error) return { error: `${command} not runnable: ${run.error.message}` };
  const last = run.stdout.trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(last) as T & { error?: string };
    return parsed.error ? { error: parsed.error } : { result: parsed };
  } catch {
    return { error: `${path.basename(command)} exited ${run.status ?? run.signal} without a result: ${run.stdout.trim().split('\n').slice(-3).join(' | ')}` };
  }
}

/** The command-line options bench/train.ts, bench/generate.ts and bench/train-parity.ts share; spread into parseArgs' options. */
export const commonOptions = {
  worker: { type: 'boolean', default: false },
  device: { type: 'string', default: 'cuda:0' },
  'no-peer': { type: 'boolean', default: false },
  python: { type: 'string', default: 'python3' },
  'deadline-s': { type: 'string', default: '450' },
} as const;

/**
 * Seconds the next child may run: what is left of --deadline-s (counted from this call), at most
 * --child-timeout-s where the script has that option.
 */
export function timeBudget(values: { 'deadline-s': string; 'child-timeout-s'?: string }): () => number {
  const deadline = Date.now() + Number(values['deadline-s']) * 1000;
  const cap = values['child-timeout-s'] === undefined ? Infinity : Number(values['child-timeout-s']);
  return () => Math.min(cap, (deadline - Date.now()) / 1000);
}

/** The Python peer bench/peer/<script> as a child of --python (runChild), or `skipped (--no-peer)`. */
export function runPeer<T>(values: { 'no-peer': boolean; python: string }, script: string, input: unknown, timeoutSec: number): ChildResult<T> {
  return values['no-peer'] ? { error: 'skipped (--no-peer)' } : runChild<T>(values.python, [peerScript(script)], input, timeoutSec);
}

/** This script again as a worker child (`--worker`), reading its spec from stdin. */
export function runWorker<T>(script: string, spec: unknown, timeoutSec: number): ChildResult<T> {
  return runChild<T>(process.execPath, [script, '--worker'], spec, timeoutSec);
}

export async function readStdinJson<T>(): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
}

/** Worker entry: the result (or the error) as one JSON line on stdout. */
export function workerMain<S, R>(fn: (spec: S) => Promise<R>): void {
  readStdinJson<S>()
    .then(fn)
    .then(
      (r) => console.log(JSON.stringify(r)),
      (e: unknown) => console.log(JSON.stringify({ error: e instanceof Error ? e.message : String(e) })),
    );
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

/** Writes resultFile(name): the date, the command line, the device, then `body`; says where. */
/**
 * The self-tested Hopper kernels' states on a GPU after the measurements ("on" where the run used
 * them; null on the CPU and on GPUs without them): which kernels a result is of.
 */
export function hopperKernelsNow(device: string): Record<string, string> | null {
  const index = Number(/^cuda:(\d+)$/.exec(device)?.[1] ?? NaN);
  const kernels = devices().gpus.find((g) => g.index === index)?.hopperKernels;
  return kernels && Object.keys(kernels).length ? kernels : null;
}

export function writeResult(name: string, device: DeviceDescription, body: Record<string, unknown>): void {
  const file = resultFile(name);
  const withKernels = { ...device, hopper_kernels: hopperKernelsNow(device.device) };
  const result = { date: new Date().toISOString(), command: commandLine(), device: withKernels, ...body };
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

export function commandLine(): string {
  return [path.basename(process.argv0), ...process.argv.slice(1).map((a) => path.relative(process.cwd(), a) || a)].join(' ');
}

export function peerScript(name: string): string {
  return path.join(packageRoot, 'bench', 'peer', name);
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

