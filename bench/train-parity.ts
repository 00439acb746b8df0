/**
 * Training parity with transformers + peft (bench/peer/torch_train_parity.py), on one GPU:
 *
 *   1. seqtune writes a random checkpoint with init-model (bf16; the 1b preset by default), loads
 *      it with fresh LoRA adapters (r 16, alpha 32, all seven projections, dropout 0) and saves
 *      them untrained (adapter-init, PEFT layout);
 *   2. seqtune writes the token batches (batches.i32) and trains on them with runTraining:
 *      bf16 base, f32 adapters, AdamW, clipping at 1, linear schedule with warm-up; it saves the
 *      trained adapter and its logits on a probe sequence;
 *   3. the peer loads the same checkpoint and adapter-init (PeftModel.from_pretrained,
 *      is_trainable=True) with attn_implementation="sdpa", trains on the same batches with the
 *      same per-step learning rates (torch.optim.AdamW(fused=True)), then loads seqtune's trained
 *      adapter into a fresh base and compares the probe logits.
 *
 * Tokens are drawn from the byte tokenizer's 256 byte ids, so the loss has somewhere to go (from
 * about ln(vocab) towards ln(256)) and the curves say something about the updates.
 *
 *   node dist/bench/train-parity.js [--device cuda:0|cpu] [--preset 1b] [--seq 1024]
 *     [--micro-batch 2] [--steps 20] [--lr 1e-3] [--warmup-steps 2] [--probe-len 32] [--work DIR]
 *     [--no-peer] [--python python3] [--deadline-s 450]
 *
 * Writes $OUT/train-parity.json on the device machine, else bench/results/<date>-train-parity.json;
 * exits 1 when a compared quantity is outside its tolerance.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { saveAdapter } from '../lib/model/adapter';
import { SPECIAL_TOKENS } from '../lib/model/io/simple-tokenizer';
import { initModel } from '../lib/model/init-model';
import { loadModel } from '../lib/model/load';
import { isPresetName, PresetName } from '../lib/model/presets';
import { HostRng, Rng } from '../lib/rng';
import { scope, tensor } from '../lib/tensor';
import { runTraining } from '../lib/train/trainer';
import { commonOptions, runPeer, runWorker, timeBudget, withDefaults, workerMain } from './common/child';
import { describeDevice, hopperKernelsNow, kernelsCell, KernelStates, kernelsOfChildren, round, table, writeResult } from './common/report';
import { ALL_TARGETS, PEFT_TARGETS, batchStream, packedBatch } from './common/train-shapes';

/** Per-step loss tolerance, relative; TOLERANCE_WHY says why. */
const LOSS_RTOL = 1e-2;
const TOLERANCE_WHY =
  'bf16 keeps 8 significant bits (up to 2^-9, about 0.2%, lost each time a value is stored); the two stacks round at different points ' +
  "(seqtune's fused LoRA and LM-head loss stay in f32 where transformers rounds logits to bf16) and sum in different orders, so step 1 " +
  'should already differ by about 0.1%, and 20 AdamW steps (updates normalised per coordinate) let small gradient differences move the ' +
  'adapters apart. 1% bounds that drift, while a real mismatch (LoRA scale, a schedule shifted by a step, a missed layer, labels shifted ' +
  'twice) moves the loss by several percent within a few steps.';
/** ‖seqtune − peft‖ / ‖peft‖ over the probe logits with the same adapter: bf16 matmuls land between 1e-3 and 1e-2. */
const LOGITS_RTOL = 1e-2;
const LORA = { r: 16, alpha: 32, dropout: 0, targets: ALL_TARGETS, useRslora: false };
const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
const MAX_GRAD_NORM = 1;
/** The byte tokenizer's ids: specials first, then the 256 bytes. */
const FIRST_BYTE_ID = SPECIAL_TOKENS.length;

interface OursSpec {
  preset: string;
  work: string;
  device: string;
  seq: number;
  microBatch: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  probeLen: number;
  seed: number;
}

interface Curve {
  losses: number[];
  grad_norms: number[];
  lrs?: number[];
  /** the Hopper kernels' states in the child that trained (seqtune only) */
  hopper_kernels?: KernelStates;
}

interface PeerResult extends Curve {
  probe_logits_rel_err: number;
  probe_argmax_agreement: number;
  lora_b_rel_diff: number;
  adapter_dtype: string;
  base_dtype: string;
  versions: Record<string, string>;
  device_name: string;
}

async function seqtuneSide(spec: OursSpec): Promise<Curve> {
  const modelDir = path.join(spec.work, 'model');
  await initModel({ preset: spec.preset as PresetName, out: modelDir, dtype: 'bf16', seed: spec.seed });
  const { model, config } = await loadModel(modelDir, { device: spec.device, dtype: 'bf16', lora: LORA, rng: new Rng(spec.seed) });
  await saveAdapter(model, path.join(spec.work, 'adapter-init'), modelDir);

  const tokens = spec.microBatch * spec.seq;
  const rng = new HostRng(spec.seed + 1);
  const draw = (n: number) => Int32Array.from({ length: n }, () => FIRST_BYTE_ID + rng.int(256));
  const ids = draw(spec.steps * tokens);
  fs.writeFileSync(path.join(spec.work, 'batches.i32'), new Uint8Array(ids.buffer));
  const curve: Required<Omit<Curve, 'hopper_kernels'>> = { losses: [], grad_norms: [], lrs: [] };
  await runTraining({
    model,
    config: {
      optimizer: { lr: spec.lr, ...ADAM },
      schedule: { kind: 'linear', warmupSteps: spec.warmupSteps },
      epochs: 1,
      maxSteps: spec.steps,
      gradAccum: 1,
      maxGradNorm: MAX_GRAD_NORM,
      evalEvery: Number.MAX_SAFE_INTEGER,
      saveEvery: Number.MAX_SAFE_INTEGER,
      keepCheckpoints: 1,
    },
    train: batchStream((i) => packedBatch(ids.subarray(i * tokens, (i + 1) * tokens), spec.microBatch, spec.seq)),
    out: spec.work,
    rng: new Rng(spec.seed, 1 << 20),
    configHash: 'parity',
    checkpoints: false,
    onStep: (m) => {
      curve.losses.push(m.loss);
      curve.grad_norms.push(m.gradNorm);
      curve.lrs.push(m.lr);
    },
  });
  await saveAdapter(model, path.join(spec.work, 'adapter-trained'), modelDir);

  const probe = draw(spec.probeLen);
  const logits = await scope(async () => {
    const i32 = (a: Int32Array) => tensor(a, [a.length], { dtype: 'i32', device: spec.device });
    const batch = { inputIds: i32(probe), positionIds: i32(Int32Array.from(probe.keys())), cuSeqlens: i32(Int32Array.of(0, probe.length)) };
    return model.logits(batch, Int32Array.from(probe.keys())).toArray();
  });
  fs.writeFileSync(path.join(spec.work, 'probe-logits.f32'), new Uint8Array(Float32Array.from(logits).buffer));
  // Everything the peer needs to replay the run exactly (the learning rates as seqtune used them).
  const plan = {
    steps: spec.steps,
    micro_batch: spec.microBatch,
    seq: spec.seq,
    lrs: curve.lrs,
    betas: [ADAM.beta1, ADAM.beta2],
    eps: ADAM.eps,
    weight_decay: ADAM.weightDecay,
    max_grad_norm: MAX_GRAD_NORM,
    targets: PEFT_TARGETS,
    probe_ids: Array.from(probe),
    vocab_size: config.vocabSize,
  };
  fs.writeFileSync(path.join(spec.work, 'plan.json'), JSON.stringify(plan));
  return { ...curve, hopper_kernels: hopperKernelsNow(spec.device) };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      ...commonOptions,
      ...withDefaults({
        preset: '1b', seq: '1024', 'micro-batch': '2', steps: '20', lr: '1e-3', 'warmup-steps': '2',
        'probe-len': '32',
      }),
      work: { type: 'string' },
    },
  });
  if (values.worker) {
    workerMain(seqtuneSide);
    return 0;
  }
  if (!isPresetName(values.preset)) throw new Error(`unknown --preset ${values.preset}`);
  const device = describeDevice(values.device);
  const work = values.work ?? fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-train-parity-'));
  fs.mkdirSync(work, { recursive: true });
  if (fs.readdirSync(work).length > 0) throw new Error(`--work ${work} is not empty`);
  const spec: OursSpec = {
    preset: values.preset,
    work,
    device: device.device,
    seq: Number(values.seq),
    microBatch: Number(values['micro-batch']),
    steps: Number(values.steps),
    lr: Number(values.lr),
    warmupSteps: Number(values['warmup-steps']),
    probeLen: Number(values['probe-len']),
    seed: 3,
  };
  // Both sides share one time budget, so the device command ends in time whatever happens.
  const timeout = timeBudget(values);
  console.log(`training parity on ${device.device} (${device.name}): ${spec.preset}, ${spec.steps} steps of ${spec.microBatch} x ${spec.seq}, work dir ${work}`);
  const ours = runWorker<Curve>(__filename, spec, timeout());
  if (!ours.result) throw new Error(`seqtune side failed: ${ours.error}`);
  if (values['no-peer']) console.log('torch peer skipped (--no-peer)');
  const peer = runPeer<PeerResult>(values, 'torch_train_parity.py', { work, device: device.device }, timeout());
  if (peer.error && !values['no-peer']) console.log(`torch peer failed: ${peer.error}`);

  const theirs = peer.result;
  const perStep = ours.result.losses.map((loss, i) => {
    const t = theirs?.losses[i];
    return {
      step: i + 1,
      lr: ours.result!.lrs?.[i],
      seqtune_loss: loss,
      torch_loss: t ?? null,
      loss_rel_diff: t === undefined ? null : Math.abs(loss - t) / Math.abs(t),
      seqtune_grad_norm: ours.result!.grad_norms[i],
      torch_grad_norm: theirs?.grad_norms[i] ?? null,
    };
  });
  const maxLossDiff = theirs ? Math.max(...perStep.map((s) => s.loss_rel_diff ?? Infinity)) : null;
  const passed = theirs ? maxLossDiff! <= LOSS_RTOL && theirs.probe_logits_rel_err <= LOGITS_RTOL : null;
  table(
    ['step', 'lr', 'seqtune loss', 'torch loss', 'rel diff', 'seqtune |g|', 'torch |g|'],
    perStep.map((s) => [s.step, round(s.lr ?? null), round(s.seqtune_loss, 6), round(s.torch_loss, 6), round(s.loss_rel_diff), round(s.seqtune_grad_norm), round(s.torch_grad_norm)]),
  );
  if (theirs) {
    console.log(`\nmax loss rel diff ${round(maxLossDiff)} (tolerance ${LOSS_RTOL}); probe logits of seqtune's adapter in peft: rel err ${round(theirs.probe_logits_rel_err)} (tolerance ${LOGITS_RTOL}), argmax agreement ${round(theirs.probe_argmax_agreement)}; lora_B after training, seqtune vs torch: rel diff ${round(theirs.lora_b_rel_diff)}`);
    console.log(passed ? 'PASS' : 'FAIL');
  }
  console.log(`Hopper kernels in the seqtune child: ${kernelsCell(ours.result.hopper_kernels)}`);
  writeResult('train-parity', device, {
    settings: {
      checkpoint: `init-model --preset ${spec.preset} --dtype bf16 --seed ${spec.seed}`,
      lora: { r: LORA.r, alpha: LORA.alpha, dropout: LORA.dropout, targets: PEFT_TARGETS },
      optimizer: { ...ADAM, lr: spec.lr, schedule: `linear, ${spec.warmupSteps} warm-up steps`, max_grad_norm: MAX_GRAD_NORM, torch: 'torch.optim.AdamW(fused=True)' },
      batches: `${spec.steps} steps of ${spec.microBatch} sequences x ${spec.seq} tokens, ids uniform over the 256 byte ids`,
      precision: 'bf16 base weights and activations, f32 adapters and optimizer state on both sides; torch attention: sdpa',
    },
    tolerance: {
      loss_rel: LOSS_RTOL,
      probe_logits_rel: LOGITS_RTOL,
      why: TOLERANCE_WHY,
    },
    seqtune: ours.result,
    torch: theirs ?? null,
    torch_skipped: peer.error ?? null,
    per_step: perStep,
    max_loss_rel_diff: maxLossDiff,
    passed,
  }, kernelsOfChildren([ours.result.hopper_kernels]));
  if (!values.work) fs.rmSync(work, { recursive: true, force: true });
  return passed === false ? 1 : 0;
}

main().then(
  (code) => (process.exitCode = code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
