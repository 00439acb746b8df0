/**
 * The model and batch shapes the training and generation benchmarks share (bench/train.ts,
 * bench/generate.ts, bench/train-parity.ts): the preset shapes (optionally cut to fewer layers) and
 * random weights made directly on the device (no multi-GB checkpoint to write or carry).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LinearName, linearNames } from '../../lib/model/block';
import { modelConfigToJson, ModelConfig } from '../../lib/model/config';
import { simpleTokenizerFiles, writeTokenizerFiles } from '../../lib/model/io/simple-tokenizer';
import { expectedWeights } from '../../lib/model/io/weights';
import { hfLinearName } from '../../lib/model/llama';
import { isPresetName, presetConfig } from '../../lib/model/presets';
import { Rng } from '../../lib/rng';
import { DType, full, randn, Tensor } from '../../lib/tensor';
import { Batch, IGNORE_INDEX } from '../../lib/data/batch';
import type { BatchStream } from '../../lib/train/batches';
import type { LoopConfig } from '../../lib/train/trainer';

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
