/**
 * `seqtune demo` as a library function: the paper's claim (SIT > IT on sequential instructions) as
 * a self-contained experiment. Two copies of one randomly initialised LLaMA are trained from
 * scratch at the same token budget, one on single-step instructions (IT), one on the same mixture
 * plus sequential ones (SIT); both are evaluated on held-out splits through the eval pipeline
 * (runEval with the `synthetic` bench, compareRuns for the paired bootstrap).
 *
 * On a CPU with two cores or more the two arms run at once in two single-threaded worker
 * processes (lib/demo/worker.ts): twice the throughput of one process, since models this small do
 * not keep two op threads busy.
 *
 * Writes into `out`: report.json, demo.svg, and per split <split>/items.jsonl (the bench's data),
 * <split>/it/ and <split>/sit/ (eval run folders: results.jsonl per item, summary.json).
 * Deterministic on the CPU: a seed gives the same data, weights, outputs and table, whether the
 * arms run in workers or in turn (the ops reduce in a fixed order whatever the thread count).
 */
import { ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageVersion, resolveDevice, weightsDtype } from '../device';
import { SeqtuneError } from '../errors';
import { compareRuns, MetricComparison, pairedBootstrap } from '../eval/compare';
import { readResults, resultsPath } from '../eval/results';
import { buildDemoData, DemoData, DemoDataOptions, EvalSplit } from './data';
import { demoModelConfig, demoParams, demoPreset, demoTokenizer } from './model';
import { DemoReport, ModelSummary, reportSvg, SplitReport } from './report';
import { DemoSettings, itemsFile, ModelKind, trainAndEvaluate } from './run-model';
import { followedAnyFormat } from './score';
import { taskByName, TaskName } from './tasks';
import type { WorkerMessage, WorkerRequest } from './worker';

export type { DemoReport, SplitReport } from './report';
export { formatTable } from './report';
export { DEMO_PRESETS } from './model';
export { TASK_NAMES } from './tasks';

export interface DemoOptions {
  /** output folder (default ./seqtune-demo) */
  out?: string;
  seed?: number;
  /** auto, cpu or cuda:N (default auto) */
  device?: string;
  /** the models' weights: auto (bf16 on a GPU, f32 on the CPU), f32 or bf16 */
  weightsDtype?: string;
  /** a DEMO_PRESETS name (default cpu; quick with `quick`) */
  preset?: string;
  /** training tokens per model (default: the preset's) */
  tokenBudget?: number;
  /** the test-sized run: preset quick and few eval items */
  quick?: boolean;
  /** items per eval split (default 200; 24 with quick) */
  items?: number;
  /** analyses (see DemoDataOptions) */
  trainSteps?: number;
  heldoutPhrasings?: boolean;
  unseenTasks?: string[];
  words?: [number, number];
  evalWords?: [number, number];
  seqFraction?: number;
  /**
   * 2: train and evaluate IT and SIT at once in two single-threaded worker processes (the default
   * on a CPU with two or more cores); 1: one after the other in this process (the default on a GPU)
   */
  jobs?: number;
  /** recorded in the report (the CLI passes its command line) */
  command?: string;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

const MODELS: readonly ModelKind[] = ['it', 'sit'];

/**
 * Format-free following of both arms, item by item from their results files, with its paired
 * bootstrap (the eval pipeline's `followed` is the strict, labelled form).
 */
async function anyFormatFollowing(out: string, split: EvalSplit, seed: number) {
  const followed = async (kind: ModelKind) => {
    const outputs = new Map((await readResults(resultsPath(path.join(out, split.name, kind)), false)).map(({ record }) => [record.id, record.output]));
    return split.items.map((item) => {
      const output = outputs.get(item.id);
      if (output === undefined) throw new SeqtuneError(`the ${kind} results of split ${split.name} have no item ${item.id}`, 'ERR_INTERNAL');
      return followedAnyFormat(item.steps, output) ? 1 : 0;
    });
  };
  const [a, b] = await Promise.all([followed('it'), followed('sit')]);
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const boot = pairedBootstrap(a, b, { seed });
  return { a: mean(a), b: mean(b), diff: boot.diff, ci: [boot.low, boot.high] as [number, number] };
}

async function splitReport(out: string, split: EvalSplit, seed: number): Promise<SplitReport> {
  const cmp = (await compareRuns(path.join(out, split.name, 'it'), path.join(out, split.name, 'sit'), { seed })).overall;
  const metric = (name: MetricComparison['metric']) => {
    const m = cmp.find((c) => c.metric === name);
    if (!m) throw new SeqtuneError(`the comparison of split ${split.name} has no ${name}`, 'ERR_INTERNAL');
    return m;
  };
  const em = metric('accuracy');
  const strict = metric('followRate');
  const free = await anyFormatFollowing(out, split, seed);
  return {
    name: split.name,
    n: split.items.length,
    it: { exactMatch: em.a, followingAnyFormat: free.a, followingRate: strict.a },
    sit: { exactMatch: em.b, followingAnyFormat: free.b, followingRate: strict.b },
    diff: {
      exactMatch: em.diff,
      followingAnyFormat: free.diff,
      followingRate: strict.diff,
      ci95: { exactMatch: em.ci, followingAnyFormat: free.ci, followingRate: strict.ci },
    },
  };
}

/** Removes what an earlier demo run left in `out`, so runEval never resumes another run's outputs. */
async function clearOutputs(out: string, data: DemoData): Promise<void> {
  await fs.mkdir(out, { recursive: true });
  for (const name of [...data.splits.map((s) => s.name), 'report.json', 'demo.svg']) {
    await fs.rm(path.join(out, name), { recursive: true, force: true });
  }
}

/** Both arms at once, each in a worker process; progress lines are forwarded to `log`. */
async function inWorkers(settings: DemoSettings, log: (line: string) => void): Promise<ModelSummary[]> {
  const children: ChildProcess[] = [];
  const arm = (kind: ModelKind) =>
    new Promise<ModelSummary>((resolve, reject) => {
      // the same loader flags (e.g. a TypeScript hook under tap); one op thread per process
      const child = fork(require.resolve('./worker'), [], { execArgv: process.execArgv, env: { ...process.env, SEQTUNE_NUM_THREADS: '1' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      let outcome: ModelSummary | SeqtuneError | undefined;
      child.on('message', (message: WorkerMessage) => {
        if ('log' in message) log(message.log);
        else if ('summary' in message) outcome = message.summary;
        else outcome = new SeqtuneError(message.error.message, message.error.code);
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        if (outcome instanceof SeqtuneError) reject(outcome);
        else if (outcome) resolve(outcome);
        else reject(new SeqtuneError(`the ${kind} worker stopped (${signal ?? `exit code ${code}`}) without a result`, 'ERR_INTERNAL'));
      });
      child.send({ kind, settings } satisfies WorkerRequest);
    });
  try {
    return await Promise.all(MODELS.map(arm));
  } catch (error) {
    // one arm failed: the other's result is of no use
    for (const child of children) if (child.exitCode === null) child.kill();
    throw error;
  }
}

/** The data settings a demo run's options amount to (the defaults filled in, checked). */
export function demoDataOptions(options: DemoOptions): DemoDataOptions {
  const dataOptions: DemoDataOptions = {
    seed: options.seed ?? 0,
    words: options.words ?? [2, 3],
    evalWords: options.evalWords ?? options.words ?? [2, 3],
    trainSteps: options.trainSteps ?? 3,
    // a quarter: at the default budget it keeps single-task accuracy and shows SIT's gains (README sweep)
    seqFraction: options.seqFraction ?? 0.25,
    heldoutPhrasings: options.heldoutPhrasings ?? true,
    unseenTasks: (options.unseenTasks ?? []).map((n) => taskByName(n).name as TaskName),
    heldoutPairCount: 4,
    items: options.items ?? (options.quick ? 24 : 200),
  };
  if (!(Number.isInteger(dataOptions.items) && dataOptions.items > 0)) throw new SeqtuneError(`items must be a positive integer, got ${dataOptions.items}`, 'ERR_ARGUMENT');
  if (!(dataOptions.seqFraction > 0 && dataOptions.seqFraction <= 1)) throw new SeqtuneError(`seqFraction must be in (0, 1], got ${dataOptions.seqFraction}`, 'ERR_ARGUMENT');
  return dataOptions;
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? 0;
  const presetName = options.preset ?? (options.quick ? 'quick' : 'cpu');
  const preset = demoPreset(presetName);
  const tokenBudget = options.tokenBudget ?? preset.tokenBudget;
  if (!(Number.isInteger(tokenBudget) && tokenBudget > 0)) throw new SeqtuneError(`tokenBudget must be a positive integer, got ${tokenBudget}`, 'ERR_ARGUMENT');
  const out = options.out ?? 'seqtune-demo';
  const { device, fallbackReason } = resolveDevice(options.device ?? 'auto');
  if (fallbackReason) log(`device: cpu (${fallbackReason})`);
  const dtype = weightsDtype(options.weightsDtype, device);

  const dataOptions = demoDataOptions(options);
  const data = buildDemoData(dataOptions);
  await clearOutputs(out, data);
  for (const split of data.splits) {
    await fs.mkdir(path.join(out, split.name), { recursive: true });
    await fs.writeFile(itemsFile(out, split.name), split.items.map((item) => `${JSON.stringify(item)}\n`).join(''));
  }
  log(`held-out task pairs: ${data.heldoutPairs.map((p) => p.join('+')).join(', ')}`);

  const params = demoParams(demoModelConfig(preset, demoTokenizer()));
  const jobs = options.jobs ?? (device === 'cpu' && os.availableParallelism() >= 2 ? 2 : 1);
  if (jobs !== 1 && jobs !== 2) throw new SeqtuneError(`jobs must be 1 or 2, got ${jobs}`, 'ERR_ARGUMENT');
  log(`model: ${presetName}, ${(params / 1e6).toFixed(2)}M parameters (${dtype}) on ${device}; ${tokenBudget} training tokens per model; ${jobs === 2 ? 'IT and SIT at once' : 'IT, then SIT'}`);
  const settings: DemoSettings = { seed, preset: presetName, tokenBudget, device, weightsDtype: dtype, out, data: dataOptions };
  let summaries: ModelSummary[] = [];
  if (jobs === 2) summaries = await inWorkers(settings, log);
  else for (const kind of MODELS) summaries.push(await trainAndEvaluate(kind, settings, log));
  const models = { it: summaries[0], sit: summaries[1] };

  const splits: SplitReport[] = [];
  for (const split of data.splits) splits.push(await splitReport(out, split, seed));
  const report: DemoReport = {
    version: packageVersion(),
    command: options.command ?? `runDemo(${JSON.stringify({ ...options, log: undefined })})`,
    seed,
    device,
    preset: presetName,
    params,
    tokenBudget,
    wallSeconds: (Date.now() - started) / 1000,
    models,
    splits,
  };
  await fs.writeFile(path.join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  await fs.writeFile(path.join(out, 'demo.svg'), reportSvg(report));
  return report;
}
