/**
 * The training loop over any LlamaModel and BatchStream. One optimizer step:
 *   1. take the step's micro-batches (gradAccum of them, or the stream's step of a fixed number of
 *      examples); the step's loss is their summed token losses divided by the
 *      step's total label tokens (not a mean of per-batch means), so gradScale = 1 / total;
 *   2. forward + backward each, accumulating gradients;
 *   3. global grad-norm;
 *   4. one fused AdamW call over all trainable tensors, with clipping by the norm, skipped on the
 *      device when the loss or the norm is not finite (then the loop stops with the step named,
 *      the parameters and the last checkpoint untouched). Nothing is read back before step 4 is
 *      queued: one host synchronisation per step, at its end.
 * Checkpoints (atomic) every saveEvery steps, at the end and on interrupt; dev loss every evalEvery.
 */
import { SeqtuneError } from '../errors';
import { devices, memoryStats } from '../device';
import type { LlamaModel } from '../model/llama';
import { firstNonFinite } from '../model/non-finite';
import { adamw, add, addInplace, cast, copyInto, gradNorm, scale } from '../ops';
import { activeProfiler } from '../profiler/session';
import { Rng } from '../rng';
import { keep, scope, sync, Tensor, zeros } from '../tensor';
import { Batch, BatchStream, toDevice } from './batches';
import { LoadedCheckpoint, saveCheckpoint, TrainerState } from './checkpoint';
import type { TrainConfig } from './config';
import { attentionSpan, flopsPerToken, modelFlopsUtilisation } from './flops';
import { extendSchedule, Extension, learningRate, Schedule, warmupSteps } from './schedule';

export interface StepMetrics {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  tokensPerSec: number;
  elapsedSec: number;
  memoryBytes: number;
  peakMemoryBytes: number;
  /** model-FLOP utilisation over the same window as tokensPerSec (lib/train/flops.ts); on GPUs of known peak */
  mfu?: number;
  devLoss?: number;
}

export type LoopConfig = Pick<
  TrainConfig,
  'optimizer' | 'schedule' | 'epochs' | 'maxSteps' | 'gradAccum' | 'maxGradNorm' | 'evalEvery' | 'saveEvery' | 'keepCheckpoints'
>;

export interface TrainingRun {
  model: LlamaModel;
  config: LoopConfig;
  train: BatchStream;
  dev?: Batch[];
  out: string;
  rng: Rng;
  configHash: string;
  /** the settings a resume must repeat, by name (trajectorySettings); a refusal names the one that differs */
  settings?: Record<string, unknown>;
  resume?: LoadedCheckpoint;
  /** aborted: finish the current step, save a checkpoint, return */
  signal?: AbortSignal;
  onStep?: (metrics: StepMetrics) => void;
  /** write no checkpoints (the demo's in-memory runs) */
  checkpoints?: boolean;
}

export interface TrainingResult {
  steps: number;
  totalSteps: number;
  tokens: number;
  finalLoss: number;
  losses: Array<{ step: number; loss: number }>;
  devLosses: Array<{ step: number; loss: number }>;
  stopped: 'done' | 'interrupted';
  wallSeconds: number;
  /** each time a resume raised the run's length: where, from and to how many steps, at what learning rate */
  extensions: Extension[];
}

/** maxSteps, or the epochs' steps: gradAccum batches per step, or the stream's own steps (stepExamples). */
export function totalSteps(config: LoopConfig, stream: Pick<BatchStream, 'batchesPerEpoch' | 'stepsPerEpoch'>): number {
  if (config.maxSteps !== undefined) return config.maxSteps;
  if (stream.stepsPerEpoch) return Math.max(1, Math.ceil(config.epochs * stream.stepsPerEpoch()));
  return Math.max(1, Math.ceil((config.epochs * stream.batchesPerEpoch()) / config.gradAccum));
}

/** Mean token loss of the dev batches (no gradients). */
export async function evaluateLoss(model: LlamaModel, batches: Batch[]): Promise<number> {
  let sum = 0;
  let tokens = 0;
  for (const batch of batches) {
    sum += await scope(async () => (await model.forward(toDevice(batch, model.device, model.arch.vocabSize))).loss.loss.item());
    tokens += batch.numLabelTokens;
  }
  return tokens > 0 ? sum / tokens : NaN;
}

/** The GPU's name for a cuda:N device (what its MFU is measured against), null on the CPU. */
function deviceName(device: string): string | null {
  const match = /^cuda:(\d+)$/.exec(device);
  return match ? (devices().gpus.find((g) => g.index === Number(match[1]))?.name ?? null) : null;
}

/** A resume must repeat the run's settings: refused otherwise, naming each that differs with both values. */
function checkSameSettings(r: LoadedCheckpoint, run: TrainingRun): void {
  const before = r.state.settings;
  if (before && run.settings) {
    const names = [...new Set([...Object.keys(before), ...Object.keys(run.settings)])];
    const differ = names.filter((n) => JSON.stringify(before[n]) !== JSON.stringify(run.settings![n]));
    if (differ.length) {
      const list = differ.map((n) => `${n} was ${JSON.stringify(before[n])}, now ${JSON.stringify(run.settings![n])}`).join('; ');
      throw new SeqtuneError(`--resume ${r.dir}: the run's settings differ: ${list}; resume with the same settings (only maxSteps/epochs may grow) or start a new --out`, 'ERR_CONFIG');
    }
  } else if (r.state.configHash !== run.configHash) {
    // a checkpoint from before settings were recorded: only its hash is known
    throw new SeqtuneError(`--resume ${r.dir}: that run used a different configuration (its checkpoint records no settings to name the difference); resume with the same settings or start a new --out`, 'ERR_CONFIG');
  }
}

/**
 * The schedule a resumed run continues with: the checkpoint's own, or, when maxSteps/epochs now
 * give more steps, that schedule extended from the step reached to the new end (no jump in the
 * rate). Fewer steps than the run already has are refused.
 */
function resumedSchedule(r: LoadedCheckpoint, fresh: Schedule): Schedule {
  const saved = r.state.schedule;
  if (!saved) return fresh; // older checkpoints: the hash check guaranteed the same length
  const savedTotal = saved.extensions?.length ? saved.extensions[saved.extensions.length - 1].toTotalSteps : saved.totalSteps;
  if (fresh.totalSteps === savedTotal) return saved;
  if (fresh.totalSteps < savedTotal) {
    throw new SeqtuneError(
      `--resume ${r.dir}: the run's length differs: it has ${savedTotal} steps (at step ${r.state.step}), now maxSteps/epochs give ${fresh.totalSteps}; ` +
        `a resume can only extend a run (a larger --max-steps)`,
      'ERR_CONFIG',
    );
  }
  return extendSchedule(saved, r.state.step, fresh.totalSteps);
}

export async function runTraining(run: TrainingRun): Promise<TrainingResult> {
  const { model, config, train } = run;
  const started = Date.now();
  const total = totalSteps(config, train);
  let schedule: Schedule = {
    kind: config.schedule.kind,
    lr: config.optimizer.lr,
    warmupSteps: warmupSteps(total, { steps: config.schedule.warmupSteps, ratio: config.schedule.warmupRatio }),
    totalSteps: total,
  };
  const working = model.trainable();
  const names = [...working.keys()];
  // bf16/f16 weights train through f32 master copies (AdamW updates the masters; the model's copy
  // is refreshed from them after each step), as mixed-precision training does.
  const params = new Map<string, Tensor>();
  for (const name of names) {
    const w = working.get(name)!;
    const saved = run.resume?.trainable.get(name);
    params.set(name, w.dtype === 'bf16' || w.dtype === 'f16' ? keep(saved && saved.dtype === 'f32' ? saved : cast(w, 'f32')) : w);
  }
  const m = new Map<string, Tensor>();
  const v = new Map<string, Tensor>();
  let state: TrainerState = { step: 0, data: train.state(), rng: run.rng.state(), tokens: 0, losses: [], devLosses: [], configHash: run.configHash, settings: run.settings, schedule };
  if (run.resume) {
    const r = run.resume;
    checkSameSettings(r, run);
    schedule = resumedSchedule(r, schedule);
    // The caller built the model from the checkpoint's trainable tensors; here the optimizer
    // moments, the step, the data position and the RNG come back.
    for (const name of names) {
      if (!r.m.get(name) || !r.v.get(name)) throw new SeqtuneError(`--resume ${r.dir}: checkpoint lacks optimizer state for ${name}`, 'ERR_IO');
    }
    state = { ...r.state, settings: run.settings, schedule };
  }
  for (const name of names) {
    const p = params.get(name)!;
    m.set(name, run.resume?.m.get(name) ?? zeros(p.shape, { dtype: 'f32', device: model.device }));
    v.set(name, run.resume?.v.get(name) ?? zeros(p.shape, { dtype: 'f32', device: model.device }));
  }
  if (run.resume) {
    try {
      train.restore(state.data);
      run.rng = Rng.from(state.rng);
    } catch (error) {
      throw new SeqtuneError(`--resume: ${run.resume.dir}/trainer-state.json is damaged: its loader or RNG state is not usable: ${(error as Error).message}`, 'ERR_IO');
    }
  }

  const save = async () => {
    if (run.checkpoints === false) return;
    state.data = train.state();
    state.rng = run.rng.state();
    await sync(model.device);
    await saveCheckpoint(run.out, state, params, { m, v }, config.keepCheckpoints);
  };

  const startStep = state.step;
  let lastSaved = state.step;
  let stopped: TrainingResult['stopped'] = 'done';
  let windowStart = Date.now();
  let windowTokens = 0;
  let windowFlops = 0;
  const gpuName = deviceName(model.device);
  const stepFlops = (batches: Batch[]) =>
    batches.reduce(
      (s, b) =>
        s +
        b.inputIds.length *
          flopsPerToken(model.arch, {
            mode: model.lora ? 'lora' : 'full',
            seq: attentionSpan(b.cuSeqlens),
            loraR: model.lora?.r ?? 0,
            targets: model.lora?.targets ?? [],
          }),
      0,
    );
  while (state.step < total) {
    // 1. the step's micro-batches (the stream moves on to the next epoch by itself)
    const micro: Batch[] = train.nextStep ? train.nextStep() : [];
    while (!train.nextStep && micro.length < config.gradAccum) micro.push(train.next());
    const labelTokens = micro.reduce((s, b) => s + b.numLabelTokens, 0);
    const step = state.step + 1;
    const lr = learningRate(schedule, step);
    // `seqtune train --profile` or SEQTUNE_PROFILE: the step's ops, timed (lib/profiler)
    const profiler = activeProfiler();
    profiler?.beginStep(step);

    // 2-4. gradients, norm, update, all queued before anything is read back, so the device never
    // waits on the host inside a step: a non-finite loss or norm makes adamw skip the update where
    // it runs (skipUnlessFinite), and the check after the step turns that into the error.
    const grads = new Map<string, Tensor>();
    const { loss, norm } = await scope(async () => {
      let lossSum: Tensor | undefined;
      for (const batch of micro) {
        await scope(async () => {
          const result = await model.forward(toDevice(batch, model.device, model.arch.vocabSize), run.rng);
          await model.backward(result, labelTokens > 0 ? 1 / labelTokens : 0, (name, g) => {
            const acc = grads.get(name);
            if (acc) {
              addInplace(acc, g);
            } else {
              grads.set(name, g);
              keep(g);
            }
          });
          if (lossSum) addInplace(lossSum, result.loss.loss);
          else lossSum = keep(result.loss.loss);
        });
      }
      const lossT = lossSum!;
      const normT = gradNorm(names.map((n) => grads.get(n)!));
      // NaN for a non-finite loss (0·Inf) or norm; the norm otherwise
      const guard = add(normT, scale(lossT.dtype === normT.dtype ? lossT : cast(lossT, normT.dtype), 0));
      adamw(
        names.map((n) => params.get(n)!),
        names.map((n) => grads.get(n)!),
        names.map((n) => m.get(n)!),
        names.map((n) => v.get(n)!),
        {
          lr,
          beta1: config.optimizer.beta1,
          beta2: config.optimizer.beta2,
          eps: config.optimizer.eps,
          weightDecay: config.optimizer.weightDecay,
          step,
          maxGradNorm: config.maxGradNorm,
          gradNorm: config.maxGradNorm > 0 ? normT : undefined,
          skipUnlessFinite: guard,
        },
      );
      for (const name of names) {
        if (params.get(name) !== working.get(name)) copyInto(working.get(name)!, params.get(name)!);
      }
      const lossValue = labelTokens > 0 ? (await lossT.item()) / labelTokens : 0;
      const normValue = await normT.item();
      lossT.dispose();
      if (!Number.isFinite(lossValue) || !Number.isFinite(normValue)) {
        const what = `step ${step}: the ${Number.isFinite(lossValue) ? 'gradient norm' : 'loss'} is ${Number.isFinite(lossValue) ? normValue : lossValue}; stopped without updating`;
        // At the run's first step nothing has been trained yet: the weights it started from are the suspects.
        const bad = step === startStep + 1 ? await firstNonFinite(model.tensors()) : null;
        if (bad) throw new SeqtuneError(`${what}: the weights it started from are not finite (${bad} holds NaN or Inf values)`, 'ERR_NON_FINITE');
        const kept = lastSaved > 0 ? `the last good checkpoint is kept (step ${lastSaved})` : 'no checkpoint has been written yet';
        throw new SeqtuneError(`${what}; ${kept}; try a lower learning rate or --max-grad-norm`, 'ERR_NON_FINITE');
      }
      await sync(model.device);
      profiler?.endStep();
      return { loss: lossValue, norm: normValue };
    }).finally(() => {
      for (const g of grads.values()) g.dispose();
    });

    const stepTokens = micro.reduce((s, b) => s + b.inputIds.length, 0);
    state.step = step;
    state.tokens += stepTokens;
    state.losses.push({ step, loss });
    windowTokens += stepTokens;
    if (gpuName) windowFlops += stepFlops(micro);
    const now = Date.now();
    const mem = memoryStats(model.device);
    const metrics: StepMetrics = {
      step,
      epoch: train.epoch,
      loss,
      lr,
      gradNorm: norm,
      tokens: state.tokens,
      tokensPerSec: windowTokens / Math.max(1e-3, (now - windowStart) / 1000),
      elapsedSec: (now - started) / 1000,
      memoryBytes: mem.bytesInUse,
      peakMemoryBytes: mem.peakBytes,
    };
    const mfu = gpuName ? modelFlopsUtilisation(windowFlops / Math.max(1e-3, (now - windowStart) / 1000), gpuName) : null;
    if (mfu !== null) metrics.mfu = mfu;
    if (run.dev && run.dev.length > 0 && (step % config.evalEvery === 0 || step === total)) {
      metrics.devLoss = await evaluateLoss(model, run.dev);
      state.devLosses.push({ step, loss: metrics.devLoss });
    }
    run.onStep?.(metrics);
    if (now - windowStart > 10_000) {
      windowStart = now;
      windowTokens = 0;
      windowFlops = 0;
    }
    if (step % config.saveEvery === 0 || step === total) {
      await save();
      lastSaved = step;
    }
    if (run.signal?.aborted && step < total) {
      await save();
      stopped = 'interrupted';
      break;
    }
  }
  return {
    steps: state.step,
    totalSteps: total,
    tokens: state.tokens,
    finalLoss: state.losses.length ? state.losses[state.losses.length - 1].loss : NaN,
    losses: state.losses,
    devLosses: state.devLosses,
    stopped,
    wallSeconds: (Date.now() - started) / 1000,
    extensions: schedule.extensions ?? [],
  };
}
