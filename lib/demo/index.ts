/**
 * `seqtune demo` as a library function: the paper's claim (SIT > IT on sequential instructions) as
 * a self-contained experiment. Two copies of one randomly initialised LLaMA are trained from
 * scratch at the same token budget, one on single-step instructions (IT), one on the same mixture
 * plus sequential ones (SIT); both are evaluated on held-out splits through the eval pipeline
 * (runEval with the `synthetic` bench, compareRuns for the paired bootstrap).
 *
 * Writes into `out`: report.json, demo.svg, and per split <split>/items.jsonl (the bench's data),
 * <split>/it/ and <split>/sit/ (eval run folders: results.jsonl per item, summary.json).
 * Deterministic on the CPU: a seed gives the same data, weights, outputs and table.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { packageVersion, resolveDevice } from '../device';
import { SeqtuneError } from '../errors';
import { compareRuns, MetricComparison } from '../eval/compare';
import { runEval } from '../eval/run';
import { buildDemoData, DemoData, DemoDataOptions, EvalSplit } from './data';
import {
  budgetedDataset,
  demoGenerator,
  demoModelConfig,
  demoParams,
  demoPreset,
  demoTokenizeOptions,
  demoTokenizer,
  initDemoModel,
  trainDemoModel,
} from './model';
import { DemoReport, ModelSummary, reportSvg, SplitReport } from './report';
import { TaskName, taskByName } from './tasks';

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
  /** recorded in the report (the CLI passes its command line) */
  command?: string;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

const MODELS = ['it', 'sit'] as const;

const percent = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);

function splitReport(split: EvalSplit, cmp: MetricComparison[]): SplitReport {
  const metric = (name: MetricComparison['metric']) => {
    const m = cmp.find((c) => c.metric === name);
    if (!m) throw new SeqtuneError(`the comparison of split ${split.name} has no ${name}`, 'ERR_INTERNAL');
    return m;
  };
  const em = metric('accuracy');
  const follow = metric('followRate');
  return {
    name: split.name,
    n: split.items.length,
    it: { exactMatch: em.a, followingRate: follow.a },
    sit: { exactMatch: em.b, followingRate: follow.b },
    diff: { exactMatch: em.diff, followingRate: follow.diff, ci95: { exactMatch: em.ci, followingRate: follow.ci } },
  };
}

/** Removes what an earlier demo run left in `out`, so runEval never resumes another run's outputs. */
async function clearOutputs(out: string, data: DemoData): Promise<void> {
  await fs.mkdir(out, { recursive: true });
  for (const name of [...data.splits.map((s) => s.name), 'report.json', 'demo.svg']) {
    await fs.rm(path.join(out, name), { recursive: true, force: true });
  }
}

/** The most new tokens an answer to the split needs, with room for a model that rambles a bit. */
function answerBudget(split: EvalSplit): number {
  const longest = Math.max(...split.items.map((item) => item.steps.reduce((n, s) => n + s.label.length + s.text.length + 8, item.gold.length + 10)));
  return longest + 16;
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

  const unseenTasks = (options.unseenTasks ?? []).map((n) => taskByName(n).name as TaskName);
  const dataOptions: DemoDataOptions = {
    seed,
    words: options.words ?? [2, 4],
    evalWords: options.evalWords ?? options.words ?? [2, 4],
    trainSteps: options.trainSteps ?? 3,
    seqFraction: options.seqFraction ?? 0.5,
    heldoutPhrasings: options.heldoutPhrasings ?? false,
    unseenTasks,
    heldoutPairCount: 5,
    items: options.items ?? (options.quick ? 24 : 200),
  };
  if (!(Number.isInteger(dataOptions.items) && dataOptions.items > 0)) throw new SeqtuneError(`items must be a positive integer, got ${dataOptions.items}`, 'ERR_ARGUMENT');
  if (!(dataOptions.seqFraction > 0 && dataOptions.seqFraction <= 1)) throw new SeqtuneError(`seqFraction must be in (0, 1], got ${dataOptions.seqFraction}`, 'ERR_ARGUMENT');
  const data = buildDemoData(dataOptions);
  await clearOutputs(out, data);
  for (const split of data.splits) {
    await fs.mkdir(path.join(out, split.name), { recursive: true });
    await fs.writeFile(path.join(out, split.name, 'items.jsonl'), split.items.map((item) => `${JSON.stringify(item)}\n`).join(''));
  }
  log(`held-out task pairs: ${data.heldoutPairs.map((p) => p.join('+')).join(', ')}`);

  const tokenizer = demoTokenizer();
  const config = demoModelConfig(preset, tokenizer);
  const params = demoParams(config);
  log(`model: ${presetName}, ${(params / 1e6).toFixed(2)}M parameters on ${device}; ${tokenBudget} training tokens per model`);
  const models = {} as Record<(typeof MODELS)[number], ModelSummary>;
  for (const kind of MODELS) {
    const dataset = budgetedDataset(data.trainRecords(kind), demoTokenizeOptions(tokenizer), tokenBudget);
    const model = initDemoModel(config, seed, device);
    try {
      const trained = await trainDemoModel(model, dataset, preset, seed, (m) => {
        if (m.step % 25 === 0) log(`${kind}: step ${m.step}, loss ${m.loss.toFixed(3)}, ${Math.round(m.tokensPerSec)} tokens/s`);
      });
      log(`${kind}: trained on ${trained.trainTokens} tokens in ${trained.steps} steps (${trained.seconds.toFixed(0)} s), final loss ${trained.finalLoss.toFixed(3)}`);
      models[kind] = { trainTokens: trained.trainTokens, finalLoss: trained.finalLoss };
      const generator = demoGenerator(model, tokenizer);
      for (const split of data.splits) {
        const evalStart = Date.now();
        const result = await runEval({
          bench: 'synthetic',
          dataFile: path.join(out, split.name, 'items.jsonl'),
          generator,
          outDir: path.join(out, split.name, kind),
          batchSize: split.items.length,
          maxNewTokens: answerBudget(split),
        });
        const { accuracy, followRate } = result.summary.overall;
        log(`${kind} ${split.name}: exact match ${percent(accuracy)}, following ${percent(followRate)} (${((Date.now() - evalStart) / 1000).toFixed(0)} s)`);
      }
    } finally {
      for (const t of model.tensors().values()) t.dispose();
    }
  }

  const splits: SplitReport[] = [];
  for (const split of data.splits) {
    const cmp = await compareRuns(path.join(out, split.name, 'it'), path.join(out, split.name, 'sit'), { seed });
    splits.push(splitReport(split, cmp.overall));
  }
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
