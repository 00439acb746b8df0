/**
 * Training throughput: tokens/s, MFU and peak GPU memory of seqtune's trainer (runTraining, the
 * loop `seqtune train` runs) against PyTorch + transformers + peft (bench/peer/torch_train.py) in
 * the same command with the same settings: random weights of a preset's shapes (bf16 base),
 * synthetic random tokens packed as micro-batch × sequence (one document per sequence, no padding),
 * LoRA on all seven projections (dropout 0) or full fine-tuning, AdamW, grad-norm clipping at 1,
 * activation checkpointing off and on. Each measurement runs in its own process (an empty GPU,
 * its own peak); warm-up steps are dropped and the median timed step is used (every step ends
 * synchronised on both sides). MFU uses lib/train/flops.ts's flopsPerToken (the trainer's own).
 *
 *   node dist/bench/train.js [--device cuda:0|cpu] [--rows 1b:lora,8b:lora,1b:full] [--ac off,on]
 *     [--seq 2048] [--micro-batch N] [--steps 10] [--warmup 3] [--layers N] [--lora-r 16]
 *     [--no-peer] [--no-compile] [--profile] [--python python3] [--deadline-s 450] [--child-timeout-s 240]
 *
 * Writes $OUT/train.json on the device machine, else bench/results/<date>-train.json. --profile
 * runs seqtune's side under the per-op profiler (lib/profiler: its tables on stderr, one Chrome
 * trace per row beside the result, e.g. train-1b-lora.trace.json); its timings then include the
 * profiler's own overhead. Beside each row's eager torch peer, a torch.compile peer runs (its
 * compilation timed apart and left out of tokens/s) unless --no-compile.
 */
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { memoryStats } from '../lib/device';
import { llamaArch } from '../lib/model/config';
import { LlamaModel } from '../lib/model/llama';
import { HostRng, Rng } from '../lib/rng';
import { planMemory } from '../lib/train/memory';
import { runTraining } from '../lib/train/trainer';
import { startProfiler, stopProfiler } from '../lib/profiler/session';
import { commonOptions, runPeer, runWorker, timeBudget, withDefaults, workerMain } from './common/child';
import { describeDevice, hopperKernelsNow, kernelsCell, KernelStates, kernelsOfChildren, median, resultFile, round, table, writeResult } from './common/report';
import { ALL_TARGETS, PEFT_TARGETS, batchStream, benchConfig, benchLoopConfig, packedBatch, randomWeights, writeConfigDir } from './common/train-shapes';
import { flopsPerToken, peakBf16Tflops } from '../lib/train/flops';

interface OursSpec {
  preset: string;
  layers: number;
  mode: 'lora' | 'full';
  seq: number;
  microBatch: number;
  steps: number;
  warmup: number;
  loraR: number;
  device: string;
  seed: number;
  activationCheckpointing: boolean;
  /** write the per-op profile's Chrome trace here */
  profile?: string;
}

/** What each side reports (snake_case: the Python peer reports the same fields). */
interface SideResult {
  tokens_per_sec: number;
  median_step_s: number;
  step_s: number[];
  /** null where the peer cannot read it (a CPU run) */
  peak_memory_bytes: number | null;
  reserved_memory_bytes: number | null;
  weights_dtype: string;
  trainable_params: number;
  final_loss: number;
  planned_memory_bytes?: number;
  device_name?: string;
  versions?: Record<string, string>;
  /** the Hopper kernels' states in the child that ran the steps (seqtune only) */
  hopper_kernels?: KernelStates;
  /** the torch.compile peer: seconds spent compiling (the warm-up steps that compiled) */
  compile_s?: number;
  /** --profile: the profiler's tables and where its trace went */
  profile_report?: string;
  profile_trace?: string;
}

async function measureOurs(spec: OursSpec): Promise<SideResult> {
  const config = benchConfig(spec.preset, spec.layers);
  const arch = llamaArch(config);
  const rng = new Rng(spec.seed);
  // bf16 weights as the torch side; full fine-tuning trains them through f32 masters (runTraining),
  // and the frozen LoRA base is bf16 with f32 adapters, as peft keeps it.
  const dtype = 'bf16';
  const lora = spec.mode === 'lora' ? { r: spec.loraR, alpha: 2 * spec.loraR, dropout: 0, targets: ALL_TARGETS, useRslora: false } : undefined;
  const model = new LlamaModel(arch, randomWeights(config, spec.device, dtype, rng), {
    device: spec.device,
    lora,
    rng,
    activationCheckpointing: spec.activationCheckpointing,
  });
  const trainable = [...model.trainable().values()].reduce((s, t) => s + t.numel, 0);
  const hostRng = new HostRng(spec.seed);
  const tokens = spec.seq * spec.microBatch;
  const stream = batchStream(() => packedBatch(Int32Array.from({ length: tokens }, () => hostRng.int(arch.vocabSize)), spec.microBatch, spec.seq));
  const stepS: number[] = [];
  if (spec.profile) startProfiler(spec.device);
  let last = performance.now();
  const result = await runTraining({
    model,
    config: benchLoopConfig(spec.warmup + spec.steps),
    train: stream,
    out: os.tmpdir(),
    rng: new Rng(spec.seed, 1 << 20),
    configHash: 'bench',
    checkpoints: false,
    // runTraining ends every step with a device sync, so host time between steps is step time.
    onStep: () => {
      const now = performance.now();
      stepS.push((now - last) / 1000);
      last = now;
    },
  });
  const mem = memoryStats(spec.device);
  const profiler = stopProfiler();
  profiler?.writeTrace(spec.profile!, { bench: 'train', spec });
  const plan = planMemory(arch, {
    gpu: spec.device !== 'cpu',
    mode: spec.mode,
    loraR: spec.loraR,
    loraTargets: ALL_TARGETS,
    microBatchTokens: tokens,
    activationCheckpointing: spec.activationCheckpointing,
  });
  const step = median(stepS.slice(spec.warmup));
  return {
    tokens_per_sec: tokens / step,
    median_step_s: step,
    step_s: stepS,
    peak_memory_bytes: mem.peakBytes,
    reserved_memory_bytes: mem.bytesReserved,
    planned_memory_bytes: plan.total,
    weights_dtype: dtype,
    trainable_params: trainable,
    final_loss: result.finalLoss,
    hopper_kernels: hopperKernelsNow(spec.device),
    ...(profiler ? { profile_report: profiler.report(), profile_trace: spec.profile } : {}),
  };
}

interface Row {
  preset: string;
  mode: 'lora' | 'full';
  ac: boolean;
}

function parseRows(rows: string, ac: string): Row[] {
  const acs = ac.split(',').map((a) => {
    if (a !== 'off' && a !== 'on') throw new Error(`--ac takes off and/or on, got ${a}`);
    return a === 'on';
  });
  return rows.split(',').flatMap((r) => {
    const [preset, mode] = r.split(':');
    if (mode !== 'lora' && mode !== 'full') throw new Error(`--rows entries are PRESET:lora or PRESET:full, got ${r}`);
    benchConfig(preset);
    return acs.map((a) => ({ preset, mode, ac: a }) as Row);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...commonOptions,
      ...withDefaults({
        rows: '1b:lora,8b:lora,1b:full', ac: 'off,on', seq: '2048', steps: '10', warmup: '3', 'lora-r': '16',
        'child-timeout-s': '240',
      }),
      'micro-batch': { type: 'string' },
      layers: { type: 'string' },
      'no-compile': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
    },
  });
  if (values.worker) return workerMain(measureOurs);

  const device = describeDevice(values.device);
  const peak = peakBf16Tflops(device.name);
  const rows = parseRows(values.rows, values.ac);
  const seq = Number(values.seq);
  const steps = Number(values.steps);
  const warmup = Number(values.warmup);
  const loraR = Number(values['lora-r']);
  const timeout = timeBudget(values);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-bench-train-'));
  console.log(`training benchmark on ${device.device} (${device.name}), sequence ${seq}, ${warmup} warm-up + ${steps} timed steps`);
  if (values['no-peer']) console.log('torch peer skipped (--no-peer)');

  const out = [];
  for (const row of rows) {
    const config = benchConfig(row.preset, values.layers === undefined ? undefined : Number(values.layers));
    const fullLayers = benchConfig(row.preset).numLayers;
    const arch = llamaArch(config);
    // 8b at micro-batch 1 keeps torch's fp32 logits and saved activations well inside 80 GB.
    const microBatch = Number(values['micro-batch'] ?? (arch.hiddenSize >= 4096 ? 1 : 4));
    const configDir = path.join(workDir, `${row.preset}-${config.numLayers}`);
    if (!fs.existsSync(configDir)) await writeConfigDir(configDir, config);
    const label = `${row.preset}${config.numLayers < fullLayers ? `/${config.numLayers}L` : ''} ${row.mode}${row.ac ? ' +AC' : ''}`;
    const slug = `${row.preset}${config.numLayers < fullLayers ? `-${config.numLayers}L` : ''}-${row.mode}${row.ac ? '-ac' : ''}`;
    console.error(`-- ${label}: micro-batch ${microBatch} x ${seq}`);

    const ours = runWorker<SideResult>(
      __filename,
      {
        preset: row.preset, layers: config.numLayers, mode: row.mode, seq, microBatch, steps, warmup, loraR, device: device.device, seed: 1,
        activationCheckpointing: row.ac, profile: values.profile ? resultFile(`train-${slug}.trace`) : undefined,
      } satisfies OursSpec,
      timeout(),
    );
    const peerSpec = {
        config_dir: configDir,
        mode: row.mode,
        activation_checkpointing: row.ac,
        seq,
        micro_batch: microBatch,
        steps,
        warmup,
        lora_r: loraR,
        lora_alpha: 2 * loraR,
        targets: PEFT_TARGETS,
        device: device.device,
        seed: 1,
    };
    const torch = runPeer<SideResult>(values, 'torch_train.py', peerSpec, timeout());
    // The same model under torch.compile: compilation happens in its warm-up steps (compile_s),
    // and the timed steps after it run the compiled graph.
    const compiled: typeof torch = values['no-compile']
      ? { error: 'skipped (--no-compile)' }
      : runPeer<SideResult>(values, 'torch_train.py', { ...peerSpec, compile: true }, timeout());
    if (compiled.error && !values['no-peer'] && !values['no-compile']) console.error(`   torch.compile: ${compiled.error}`);
    if (ours.error) console.error(`   seqtune: ${ours.error}`);
    if (ours.result?.profile_report) console.error(`${ours.result.profile_report}\n   trace: ${ours.result.profile_trace}`);
    if (torch.error && !values['no-peer']) console.error(`   torch: ${torch.error}`);
    const flops = flopsPerToken(arch, { mode: row.mode, seq, loraR, targets: ALL_TARGETS });
    const mfu = (r?: SideResult) => (r && peak ? (r.tokens_per_sec * flops) / (peak * 1e12) : null);
    out.push({
      label,
      preset: row.preset,
      layers: config.numLayers,
      slice_of_layers: config.numLayers < fullLayers ? `${config.numLayers} of ${fullLayers} layers, each of the preset's shapes` : null,
      mode: row.mode,
      activation_checkpointing: row.ac,
      seq,
      micro_batch: microBatch,
      tokens_per_step: seq * microBatch,
      flops_per_token: flops,
      seqtune: ours.result ? { ...ours.result, mfu: mfu(ours.result) } : null,
      seqtune_skipped: ours.error ?? null,
      hopper_kernels: ours.result?.hopper_kernels ?? null,
      torch: torch.result ? { ...torch.result, mfu: mfu(torch.result) } : null,
      torch_skipped: torch.error ?? null,
      torch_compiled: compiled.result ? { ...compiled.result, mfu: mfu(compiled.result) } : null,
      torch_compiled_skipped: compiled.error ?? null,
      tokens_per_sec_ratio: ours.result && torch.result ? ours.result.tokens_per_sec / torch.result.tokens_per_sec : null,
      tokens_per_sec_compiled_ratio: ours.result && compiled.result ? ours.result.tokens_per_sec / compiled.result.tokens_per_sec : null,
      planned_over_peak_memory_ratio:
        ours.result?.planned_memory_bytes && ours.result.peak_memory_bytes ? ours.result.planned_memory_bytes / ours.result.peak_memory_bytes : null,
      peak_memory_ratio_torch_over_ours:
        ours.result?.peak_memory_bytes && torch.result?.peak_memory_bytes ? torch.result.peak_memory_bytes / ours.result.peak_memory_bytes : null,
    });
  }
  fs.rmSync(workDir, { recursive: true, force: true });

  const gib = (b?: number | null) => (b ? round(b / 2 ** 30) : null);
  console.log(
    '\ntokens/s, MFU (bf16 dense peak), memory GiB; tok ratio = seqtune/torch (eager, compiled), mem ratio = torch/seqtune (higher favours seqtune);\n' +
      'plan = lib/train/memory.ts\'s estimate beside the measured peak (tensors; the cache reserves more)',
  );
  table(
    ['row', 'seqtune tok/s', 'torch tok/s', 'tok ratio', 'compiled tok/s', 'vs compiled', 'compile s', 'seqtune MFU', 'torch MFU', 'plan GiB', 'seqtune GiB', 'torch GiB', 'mem ratio', 'Hopper kernels (seqtune child)'],
    out.map((r) => [
      r.label,
      round(r.seqtune?.tokens_per_sec, 4),
      round(r.torch?.tokens_per_sec, 4),
      round(r.tokens_per_sec_ratio),
      round(r.torch_compiled?.tokens_per_sec, 4),
      round(r.tokens_per_sec_compiled_ratio),
      round(r.torch_compiled?.compile_s),
      round(r.seqtune?.mfu),
      round(r.torch?.mfu),
      gib(r.seqtune?.planned_memory_bytes),
      gib(r.seqtune?.peak_memory_bytes),
      gib(r.torch?.peak_memory_bytes),
      round(r.peak_memory_ratio_torch_over_ours),
      kernelsCell(r.hopper_kernels),
    ]),
  );
  writeResult('train', device, {
    peak_bf16_tflops: peak,
    flops_accounting:
      'per token: LoRA 4·N_mm + 6·L·T·d_q + 6·r·Σ(d_in+d_out); full 6·N_mm + 6·L·T·d_q (N_mm: projections + LM head; recomputation not counted)',
    ratios:
      'tokens_per_sec_ratio = seqtune / torch (eager); tokens_per_sec_compiled_ratio = seqtune / torch.compile; peak_memory_ratio_torch_over_ours = torch / seqtune; ' +
      'above 1 favours seqtune in all three; planned_over_peak_memory_ratio = memory plan / measured peak',
    timing: `${warmup} warm-up steps dropped, median of ${steps} timed steps, each ending synchronised`,
    rows: out,
  }, kernelsOfChildren(out.map((r) => (r.seqtune ? r.hopper_kernels : undefined))));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
