/**
 * The demo's models, built in memory (nothing downloaded or written): a char-level tokenizer over
 * the demo alphabet (the same files `init-model --tokenizer char` writes) and a randomly
 * initialised LLaMA of a demo preset, initialised as init-model does (transformers'
 * _init_weights: projections and embeddings ~ N(0, 0.02), RMSNorm weights 1). Training goes
 * through the library's pipeline: encodeRecord (tokenize) -> TokenizedDataset -> loaderStream
 * (packing) -> runTraining; evaluation generates through lib/model/generate (greedy, KV cache).
 */
import { encodeRecord, TokenizedDataset, TokenizeOptions } from '../data/tokenize';
import { AlpacaRecord } from '../data/records';
import { tuluFormat } from '../data/templates';
import { SeqtuneError } from '../errors';
import type { Generator } from '../eval/generator';
import { ModelConfig, llamaArch } from '../model/config';
import { generate } from '../model/generate';
import { INITIALIZER_RANGE } from '../model/init-model';
import { simpleTokenizerFiles } from '../model/io/simple-tokenizer';
import { expectedWeights, parameterCount } from '../model/io/weights';
import { LlamaModel } from '../model/llama';
import { HfTokenizer } from '../model/tokenizer';
import { Rng } from '../rng';
import { full, randn, Tensor } from '../tensor';
import { loaderStream } from '../train/batches';
import { LoopConfig, runTraining, StepMetrics } from '../train/trainer';
import { ALPHABET } from './tasks';

export interface DemoPreset {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  /** tokens per optimizer step (packed) */
  batchTokens: number;
  lr: number;
  /** the default training budget per model, in tokens */
  tokenBudget: number;
}

/**
 * Sizes chosen from measured CPU throughput (bench/demo-measure.ts, bench/results/*-demo*.json):
 * `cpu` (the default) is what trains both models and evaluates them within five minutes on two
 * idle cores (scripts/demo-idle.sh times it; README, "The demo"): 2M tokens per model in 256-token
 * batches at lr 1.2e-3, which learned more per token than 512-token batches or larger rates in
 * single-arm trials (bench/NOTES.md, CPU runs log). `cpu-small` and `cpu-large` are the sweep's other sizes;
 * `quick` is for tests; `gpu` is for a GPU run with --device cuda:0: 20M tokens per model is
 * about two minutes on an H200 by an estimate (README); it has not run on a GPU.
 */
export const DEMO_PRESETS: Readonly<Record<string, DemoPreset>> = {
  quick: { hiddenSize: 32, numLayers: 1, numHeads: 2, intermediateSize: 96, batchTokens: 1024, lr: 3e-3, tokenBudget: 24_000 },
  cpu: { hiddenSize: 96, numLayers: 3, numHeads: 4, intermediateSize: 256, batchTokens: 256, lr: 1.2e-3, tokenBudget: 2_000_000 },
  // the size axis of the README's sweep (bench/demo-sweep.ts): a third and 2.4x the default's parameters
  'cpu-small': { hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 176, batchTokens: 512, lr: 3e-3, tokenBudget: 2_500_000 },
  'cpu-large': { hiddenSize: 128, numLayers: 4, numHeads: 4, intermediateSize: 352, batchTokens: 512, lr: 3e-3, tokenBudget: 2_500_000 },
  gpu: { hiddenSize: 384, numLayers: 6, numHeads: 6, intermediateSize: 1024, batchTokens: 16384, lr: 1e-3, tokenBudget: 20_000_000 },
};

export function demoPreset(name: string): DemoPreset {
  const preset = DEMO_PRESETS[name];
  if (!preset) throw new SeqtuneError(`unknown demo preset '${name}' (one of: ${Object.keys(DEMO_PRESETS).join(', ')})`, 'ERR_ARGUMENT');
  return preset;
}

/** The char-level tokenizer of the demo alphabet, padded to a multiple of 16 ids. */
export function demoTokenizer(): HfTokenizer {
  const probe = simpleTokenizerFiles('char', 1 << 16, { alphabet: ALPHABET });
  const files = simpleTokenizerFiles('char', Math.ceil(probe.usedSize / 16) * 16, { alphabet: ALPHABET, maxLength: 1024 });
  return new HfTokenizer(files.tokenizer, files.config, 'seqtune demo char tokenizer (in memory)');
}

export function demoModelConfig(preset: DemoPreset, tokenizer: HfTokenizer): ModelConfig {
  return {
    architecture: 'LlamaForCausalLM',
    modelType: 'llama',
    vocabSize: tokenizer.vocabSize,
    hiddenSize: preset.hiddenSize,
    intermediateSize: preset.intermediateSize,
    numLayers: preset.numLayers,
    numHeads: preset.numHeads,
    numKvHeads: preset.numHeads,
    headDim: preset.hiddenSize / preset.numHeads,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    attentionBias: false,
    maxPositionEmbeddings: 1024,
    bosTokenId: tokenizer.bosId,
    eosTokenIds: [tokenizer.eosId],
    slidingWindow: null,
    torchDtype: 'float32',
  };
}

export const demoParams = (config: ModelConfig): number => parameterCount(config);

/** A fresh model: the same seed gives the same weights (both runs of the demo start from them), in `dtype` (lib/device weightsDtype). */
export function initDemoModel(config: ModelConfig, seed: number, device: string, dtype: 'f32' | 'bf16' = 'f32'): LlamaModel {
  const rng = new Rng(seed);
  const weights = new Map<string, Tensor>();
  for (const [name, shape] of expectedWeights(config)) {
    weights.set(name, name.endsWith('norm.weight') ? full(shape, 1, { device, dtype }) : randn(shape, { rng, std: INITIALIZER_RANGE, device, dtype }));
  }
  return new LlamaModel(llamaArch(config), weights, { device });
}

/** The tulu format the eval side renders too (`<|user|>\n...\n<|assistant|>\n`), loss on responses. */
export function demoTokenizeOptions(tokenizer: HfTokenizer): TokenizeOptions {
  return { tokenizer, format: tuluFormat(), trainOn: 'response' };
}

/** Examples from `records` until the next would pass `budget` tokens, as a packed-loader dataset. */
export function budgetedDataset(records: Iterator<AlpacaRecord>, options: TokenizeOptions, budget: number): TokenizedDataset {
  const examples: number[][] = [];
  const targets: number[][] = [];
  let total = 0;
  for (;;) {
    const { example } = encodeRecord(records.next().value as AlpacaRecord, options);
    if (!example) continue;
    if (total + example.ids.length > budget) break;
    examples.push(example.ids);
    targets.push(example.target);
    total += example.ids.length;
  }
  if (examples.length === 0) throw new SeqtuneError(`a token budget of ${budget} holds no training example`, 'ERR_ARGUMENT');
  // filled in place: Array.flat and TypedArray.from over millions of tokens took seconds
  const offsets = new Int32Array(examples.length + 1);
  const ids = new Int32Array(total);
  const target = new Uint8Array(total);
  examples.forEach((example, i) => {
    ids.set(example, offsets[i]);
    target.set(targets[i], offsets[i]);
    offsets[i + 1] = offsets[i] + example.length;
  });
  return new TokenizedDataset(ids, target, offsets);
}

export interface TrainOutcome {
  trainTokens: number;
  finalLoss: number;
  steps: number;
  seconds: number;
}

/** One epoch over the dataset (packed, seeded order), cosine schedule with a short warmup. */
export async function trainDemoModel(
  model: LlamaModel,
  dataset: TokenizedDataset,
  preset: DemoPreset,
  seed: number,
  onStep?: (metrics: StepMetrics) => void,
): Promise<TrainOutcome> {
  const config: LoopConfig = {
    optimizer: { lr: preset.lr, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01 },
    schedule: { kind: 'cosine', warmupRatio: 0.05 },
    epochs: 1,
    gradAccum: 1,
    maxGradNorm: 1,
    evalEvery: Number.MAX_SAFE_INTEGER,
    saveEvery: Number.MAX_SAFE_INTEGER,
    keepCheckpoints: 1,
  };
  const result = await runTraining({
    model,
    config,
    train: loaderStream(dataset, { tokenBudget: preset.batchTokens, mode: 'pack', seed }),
    out: '',
    rng: new Rng(seed, 1 << 20),
    configHash: 'seqtune-demo',
    checkpoints: false,
    onStep,
  });
  return { trainTokens: result.tokens, finalLoss: result.finalLoss, steps: result.steps, seconds: result.wallSeconds };
}

/** Greedy generation with the KV cache, stopping at EOS: the Generator runEval drives. */
export function demoGenerator(model: LlamaModel, tokenizer: HfTokenizer): Generator {
  return {
    async generate(prompts, options) {
      return (await generate(model, tokenizer, prompts, { maxNewTokens: options.maxNewTokens, stop: options.stop })).map((g) => g.text);
    },
  };
}
