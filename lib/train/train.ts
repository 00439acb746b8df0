/**
 * `seqtune train` as a library function: a Hugging Face model directory and data files in, a
 * trained adapter (PEFT layout) or full checkpoint out, with metrics, a loss curve and resumable
 * checkpoints on the way.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { checkDataFile, readRecords } from '../data/read';
import { DataRecord } from '../data/records';
import { tokenizeRecords, TokenizeReport, whyEmpty } from '../data/tokenize';
import { buildBatch } from '../data/batch';
import { deviceMemory, DeviceReport, memoryStats, resolveDevice, weightsDtype } from '../device';
import { SeqtuneError } from '../errors';
import { resolveModel, ResolvedModel } from '../hub/resolve';
import { saveAdapter, mergedWeights } from '../model/adapter';
import { llamaArch, modelConfigToJson, readModelConfig } from '../model/config';
import { writeCheckpoint } from '../model/io/checkpoint';
import { tensorEntry } from '../model/io/safetensors-writer';
import { writeJsonAtomic } from '../model/io/atomic';
import { loadModel } from '../model/load';
import { promptFormat } from '../model/prompt-format';
import { writeTrainedTemplate } from '../model/trained-template';
import { HostRng, Rng } from '../rng';
import { scope } from '../tensor';
import { Batch, loaderStream } from './batches';
import { loadCheckpoint } from './checkpoint';
import { TrainConfig } from './config';
import { lossCurveSvg } from './loss-curve';
import { checkFits, MemoryPlan, planMemory } from './memory';
import { activeProfiler, startProfiler, stopProfiler } from '../profiler/session';
import { RunReporter } from './report';
import { checkRunDirectory, METRICS_FILE, openRunDirectory, trimMetrics } from './run-dir';
import { runTraining, StepMetrics, TrainingResult, totalSteps } from './trainer';

export interface TrainOutcome extends TrainingResult {
  device: string;
  outDir: string;
  /** the adapter (LoRA) or full model directory written at the end */
  artifact: string | null;
  data: { train: TokenizeReport; dev?: TokenizeReport };
}

/** What changes the training trajectory, run length included (checkpoints made before `trajectorySettings` are checked by it). */
export function configHash(config: TrainConfig): string {
  const { out: _out, device: _device, evalEvery: _e, saveEvery: _s, keepCheckpoints: _k, logEvery: _l, ...rest } = config;
  void [_out, _device, _e, _s, _k, _l];
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

/**
 * The settings a resume must repeat, by dotted name: everything that shapes the trajectory except
 * its length (maxSteps, epochs), which a resume may raise to extend the run.
 */
export function trajectorySettings(config: TrainConfig): Record<string, unknown> {
  const { out: _o, device: _d, evalEvery: _e, saveEvery: _s, keepCheckpoints: _k, logEvery: _l, maxSteps: _m, epochs: _n, ...rest } = config;
  void [_o, _d, _e, _s, _k, _l, _m, _n];
  const flat: Record<string, unknown> = {};
  const walk = (value: unknown, name: string) => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, name ? `${name}.${k}` : k);
    } else {
      flat[name] = value;
    }
  };
  walk(rest, '');
  return flat;
}

/** The tokens of one micro-batch: --batch-tokens, else batch size × max length. */
function microBatchTokens(config: TrainConfig): number {
  return config.batchTokens ?? config.batchSize * config.maxLength;
}

async function readAll(files: string[]): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for (const file of files) {
    for await (const item of readRecords(file)) out.push(item.record);
  }
  return out;
}

export async function train(
  config: TrainConfig,
  options: {
    resume?: string;
    /** replace the previous run's files in a non-empty config.out */
    overwrite?: boolean;
    signal?: AbortSignal;
    log?: (line: string) => void;
    progress?: NodeJS.WriteStream;
    onStep?: (metrics: StepMetrics) => void;
    /** the machine as devices() reports it (tests pass a fake one) */
    deviceReport?: DeviceReport;
    /** profile every step (lib/profiler): the tables go to the log, the Chrome trace to this file */
    profile?: string;
  } = {},
): Promise<TrainOutcome> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { device, fallbackReason } = resolveDevice(config.device, options.deviceReport);
  if (fallbackReason) log(`device: cpu (${fallbackReason})`);
  // A bad --out is refused first, touching nothing. The memory plan needs only config.json: a run
  // that cannot fit is refused before any weight, checkpoint or data is read, or anything is written.
  checkRunDirectory(config, options);
  const tokenBudget = microBatchTokens(config);
  const source = await resolveModel(config.model);
  const modelConfig = await readModelConfig(source.dir, { maxSeqLen: config.maxLength });
  const plan = planMemory(llamaArch(modelConfig), {
    gpu: device !== 'cpu',
    mode: config.mode,
    loraR: config.lora.r,
    loraTargets: config.lora.targets,
    microBatchTokens: tokenBudget,
    activationCheckpointing: config.activationCheckpointing,
  });
  const memory = deviceMemory(device, options.deviceReport);
  checkFits(plan, memory.available, device, {
    mode: config.mode,
    microBatchTokens: tokenBudget,
    activationCheckpointing: config.activationCheckpointing,
    availableNote: memory.note,
  });
  // The inputs exist and are files (opened, not read) before the plan is printed or --out made.
  for (const file of [...config.data, ...(config.dev ? [config.dev] : [])]) await checkDataFile(file);
  log(`model: ${(plan.totalParams / 1e6).toFixed(2)}M parameters, ${(plan.trainableParams / 1e6).toFixed(3)}M trainable (${config.mode}); about ${(plan.total / 2 ** 30).toFixed(2)} GiB needed, ${memory.note}`);
  const runDir = await openRunDirectory(config, options);
  try {
    if (runDir.removed.length) log(`removed ${runDir.removed.length} temporary file(s) of an interrupted run: ${runDir.removed.join(', ')}`);
    return await trainIn(config, source, device, options, log, plan);
  } finally {
    runDir.lock.release();
  }
}

async function trainIn(
  config: TrainConfig,
  source: ResolvedModel,
  device: string,
  options: Parameters<typeof train>[1] & object,
  log: (line: string) => void,
  plan: MemoryPlan,
): Promise<TrainOutcome> {
  const tokenBudget = microBatchTokens(config);
  const resume = options.resume ? await loadCheckpoint(options.resume, device) : undefined;
  if (resume) trimMetrics(config.out, resume.state.step);
  const hash = configHash(config);

  const loaded = await loadModel(source, {
    device,
    lora: config.mode === 'lora' ? { ...config.lora } : undefined,
    rng: new Rng(config.seed),
    overrides: resume?.trainable,
    activationCheckpointing: config.activationCheckpointing,
    maxSeqLen: config.maxLength,
    dtype: weightsDtype(config.weightsDtype, device),
  });
  const { model, tokenizer } = loaded;
  if (config.maxLength > loaded.config.maxPositionEmbeddings) {
    log(`warning: --max-length ${config.maxLength} is above the model's max_position_embeddings (${loaded.config.maxPositionEmbeddings}); positions past it were never trained`);
  }

  // Data: tokenized with the run's prompt format; the dev set is a file or a seeded sample.
  const format = promptFormat(config.template, tokenizer);
  const tokenizeOptions = { tokenizer, format, trainOn: config.lossMask, maxLength: config.maxLength, overLength: 'truncate' as const };
  let records = await readAll(config.data);
  let devRecords: DataRecord[] | undefined;
  if (config.dev) {
    devRecords = await readAll([config.dev]);
  } else if (config.valSize > 0) {
    if (config.valSize >= records.length) throw new SeqtuneError(`valSize ${config.valSize} leaves no training data (${records.length} records)`, 'ERR_CONFIG');
    const order = new HostRng(config.seed ^ 0x5eed).shuffle(records.map((_, i) => i));
    const dev = new Set(order.slice(0, config.valSize));
    devRecords = records.filter((_, i) => dev.has(i));
    records = records.filter((_, i) => !dev.has(i));
  }
  const trainData = await tokenizeRecords(records, tokenizeOptions);
  if (trainData.report.kept === 0) throw new SeqtuneError(`${config.data.join(', ')}: no training examples, ${whyEmpty(trainData.report, config.maxLength)}`, 'ERR_DATA');
  log(`data: ${trainData.report.kept} training examples (${trainData.report.in} read, ${trainData.report.truncated} truncated, ${trainData.report.skipped} skipped)`);
  let devBatches: Batch[] | undefined;
  let devReport: TokenizeReport | undefined;
  if (devRecords) {
    const dev = await tokenizeRecords(devRecords, tokenizeOptions);
    devReport = dev.report;
    devBatches = [];
    for (let i = 0; i < dev.dataset.size; i += config.batchSize) {
      devBatches.push(buildBatch(dev.dataset, Array.from({ length: Math.min(config.batchSize, dev.dataset.size - i) }, (_, k) => i + k)));
    }
  }
  const stream = loaderStream(trainData.dataset, { tokenBudget, mode: config.packing ? 'pack' : 'bucket', seed: config.seed, stepExamples: config.stepExamples });


  const total = totalSteps(config, stream);
  if (config.schedule.warmupSteps !== undefined && config.schedule.warmupSteps >= total) {
    log(`warning: the warmup (${config.schedule.warmupSteps} steps) is not shorter than the run (${total} steps): the learning rate never reaches ${config.optimizer.lr}`);
  }
  const reporter = new RunReporter(path.join(config.out, METRICS_FILE), total, config.logEvery, options.progress);
  // SEQTUNE_PROFILE may have started one for the whole process; it then also reports at exit.
  const ownProfiler = options.profile !== undefined && !activeProfiler();
  if (ownProfiler) startProfiler(device);
  let result: TrainingResult;
  try {
    result = await runTraining({
      model,
      config,
      train: stream,
      dev: devBatches,
      out: config.out,
      rng: new Rng(config.seed, 1 << 20),
      configHash: hash,
      settings: trajectorySettings(config),
      resume,
      signal: options.signal,
      onStep: (m) => {
        reporter.step(m);
        options.onStep?.(m);
      },
    });
  } finally {
    await reporter.close();
    const profiler = ownProfiler ? stopProfiler() : activeProfiler();
    if (profiler && options.profile !== undefined) {
      log(profiler.report());
      profiler.writeTrace(options.profile, { command: 'seqtune train', model: config.model, device });
      log(`profile: Chrome trace written to ${options.profile} (open it in https://ui.perfetto.dev)`);
    }
  }

  const peak = memoryStats(device).peakBytes;
  log(`memory: planned ${(plan.total / 2 ** 30).toFixed(2)} GiB, measured peak ${(peak / 2 ** 30).toFixed(2)} GiB (tensors; plan/peak ${(plan.total / peak).toFixed(2)})`);
  await fs.writeFile(
    path.join(config.out, 'loss.svg'),
    lossCurveSvg(
      [
        { name: 'train loss', color: '#1f77b4', points: result.losses.map((p) => ({ step: p.step, value: p.loss })) },
        { name: 'dev loss', color: '#d62728', points: result.devLosses.map((p) => ({ step: p.step, value: p.loss })) },
      ],
      `seqtune train: ${path.basename(config.model)} (${config.mode})`,
    ),
  );
  let artifact: string | null = null;
  if (result.stopped === 'done') {
    if (config.mode === 'lora') {
      artifact = path.join(config.out, 'adapter');
      await saveAdapter(model, artifact, loaded.name);
    } else {
      artifact = path.join(config.out, 'model');
      await saveFullModel(loaded, artifact);
    }
    await writeTrainedTemplate(artifact, config.template);
  }
  await writeJsonAtomic(path.join(config.out, 'summary.json'), {
    steps: result.steps,
    totalSteps: result.totalSteps,
    tokens: result.tokens,
    finalLoss: result.finalLoss,
    stopped: result.stopped,
    wallSeconds: result.wallSeconds,
    device,
    artifact,
    // resumes that raised the run's length: at which step, from and to how many steps, from which rate
    extensions: result.extensions,
  });
  return { ...result, device, outDir: config.out, artifact, data: { train: trainData.report, dev: devReport } };
}

/** The model's current weights as a Hugging Face checkpoint directory (config, weights, tokenizer files). */
export async function saveFullModel(loaded: Awaited<ReturnType<typeof loadModel>>, dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await scope(async () => {
    const weights = loaded.model.lora ? mergedWeights(loaded.model) : loaded.model.tensors();
    const entries = [...weights].filter(([n]) => !n.includes('.lora_')).map(([n, t]) => tensorEntry(n, t));
    await writeCheckpoint(dir, entries);
  });
  await writeJsonAtomic(path.join(dir, 'config.json'), modelConfigToJson(loaded.config));
  for (const file of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    await fs.copyFile(path.join(loaded.dir, file), path.join(dir, file)).catch(() => undefined);
  }
}
