/**
 * Hugging Face config.json for the LLaMA family (LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM) as one typed ModelConfig, and back. Anything the model would compute
 * differently from transformers (another activation, MLP biases, unsupported RoPE scaling, a
 * sliding window that would bite) is refused here with the reason, instead of training silently on
 * a different model. Defaults for absent optional keys are those of the transformers config
 * classes; the keys that fix tensor shapes are required.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SeqtuneError } from '../errors';
import type { RopeOptions } from '../ops';
import type { LlamaArch, LlamaShape } from './llama';

export type Architecture = 'LlamaForCausalLM' | 'MistralForCausalLM' | 'Qwen2ForCausalLM';
export type ModelType = 'llama' | 'mistral' | 'qwen2';

const MODEL_TYPES: Readonly<Record<Architecture, ModelType>> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};

/** transformers' class defaults for the keys we let a config leave out. */
const DEFAULTS: Readonly<Record<ModelType, { rmsNormEps: number; ropeTheta: number; maxPositionEmbeddings: number; tie: boolean }>> = {
  llama: { rmsNormEps: 1e-6, ropeTheta: 10000, maxPositionEmbeddings: 2048, tie: false },
  mistral: { rmsNormEps: 1e-6, ropeTheta: 10000, maxPositionEmbeddings: 4096 * 32, tie: false },
  qwen2: { rmsNormEps: 1e-6, ropeTheta: 10000, maxPositionEmbeddings: 32768, tie: false },
};

export type RopeScaling = NonNullable<RopeOptions['scaling']>;

export interface ModelConfig extends LlamaShape {
  architecture: Architecture;
  modelType: ModelType;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** q, k and v projections have biases (always for Qwen2, never for Llama/Mistral) */
  attentionBias: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  /** HF allows a list (Llama 3 instruct: end_of_text and eot) */
  eosTokenIds: number[];
  /** the sliding-attention window when one is configured but cannot matter (see maxSeqLen) */
  slidingWindow: number | null;
  /** torch_dtype / dtype as written, e.g. 'bfloat16' */
  torchDtype: string | null;
}

export interface ParseConfigOptions {
  /**
   * The longest sequence you will run. A sliding attention window shorter than the model's
   * max_position_embeddings is accepted only when this is at most the window, since then sliding
   * and full causal attention are identical.
   */
  maxSeqLen?: number;
}

function configError(source: string, message: string): SeqtuneError {
  return new SeqtuneError(`${source}: ${message}`, 'ERR_CONFIG');
}

type Json = Record<string, unknown>;

function positiveInt(json: Json, key: string, source: string, fallback?: number): number {
  const value = json[key] ?? fallback;
  if (value === undefined) throw configError(source, `missing "${key}" (a positive integer)`);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw configError(source, `"${key}" must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function positiveNumber(json: Json, key: string, source: string, fallback?: number): number {
  const value = json[key] ?? fallback;
  if (value === undefined) throw configError(source, `missing "${key}" (a positive number)`);
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw configError(source, `"${key}" must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function tokenIds(value: unknown, key: string, vocabSize: number, source: string): number[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id >= vocabSize) {
      throw configError(source, `"${key}" must be token ids below vocab_size ${vocabSize}, got ${JSON.stringify(value)}`);
    }
  }
  return list as number[];
}

function parseArchitecture(json: Json, source: string): Architecture {
  const archs = json.architectures;
  const supported = Object.keys(MODEL_TYPES).join(', ');
  if (!Array.isArray(archs) || archs.length !== 1 || typeof archs[0] !== 'string') {
    throw configError(source, `"architectures" must name one model class (supported: ${supported}), got ${JSON.stringify(archs)}`);
  }
  const arch = archs[0];
  if (!Object.prototype.hasOwnProperty.call(MODEL_TYPES, arch)) {
    throw configError(source, `architecture ${arch} is not supported (supported: ${supported})`);
  }
  const modelType = json.model_type;
  if (modelType !== undefined && modelType !== MODEL_TYPES[arch as Architecture]) {
    throw configError(source, `model_type ${JSON.stringify(modelType)} does not match ${arch} (expected "${MODEL_TYPES[arch as Architecture]}")`);
  }
  return arch as Architecture;
}

/** rope_scaling (or transformers 5's rope_parameters) to our form; null for plain RoPE. */
function parseRopeScaling(json: Json, source: string): RopeScaling | null {
  const raw = (json.rope_scaling ?? json.rope_parameters) as Json | null | undefined;
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object') throw configError(source, `"rope_scaling" must be an object or null, got ${JSON.stringify(raw)}`);
  const type = raw.rope_type ?? raw.type ?? 'default';
  if (type === 'default') return null;
  const where = `${source} (rope_scaling)`;
  if (type === 'linear') return { type, factor: positiveNumber(raw, 'factor', where) };
  if (type === 'llama3') {
    return {
      type,
      factor: positiveNumber(raw, 'factor', where),
      lowFreqFactor: positiveNumber(raw, 'low_freq_factor', where),
      highFreqFactor: positiveNumber(raw, 'high_freq_factor', where),
      originalMaxPositionEmbeddings: positiveInt(raw, 'original_max_position_embeddings', where),
    };
  }
  throw configError(source, `rope_scaling type ${JSON.stringify(type)} is not supported (supported: llama3, linear, or none)`);
}

/** The window if sliding-window attention is switched on and shorter than the context. */
function parseSlidingWindow(json: Json, modelType: ModelType, maxPositions: number, source: string, options: ParseConfigOptions): number | null {
  if (modelType === 'llama') return null;
  // Qwen2 has an explicit switch; Mistral slides whenever sliding_window is set.
  if (modelType === 'qwen2' && json.use_sliding_window !== true) return null;
  if (json.sliding_window === null) return null;
  // Absent means the config class default, 4096 for both.
  const window = positiveInt(json, 'sliding_window', source, 4096);
  if (window >= maxPositions) return null;
  if (options.maxSeqLen !== undefined && options.maxSeqLen <= window) return window;
  if (options.maxSeqLen !== undefined) {
    throw configError(
      source,
      `sequences of up to ${options.maxSeqLen} tokens are longer than the sliding attention window of ${window} tokens ` +
        `(max_position_embeddings ${maxPositions}); seqtune's full causal attention equals sliding-window attention only up to ${window} tokens, ` +
        `so use at most ${window} (train: --max-length ${window})`,
    );
  }
  throw configError(
    source,
    `sliding-window attention (window ${window} < max_position_embeddings ${maxPositions}) is not supported; ` +
      `it only differs from full attention past ${window} tokens, so pass maxSeqLen <= ${window} to load this model for shorter sequences`,
  );
}

/** Checks a parsed config.json object; `source` names the file in errors. */
export function parseModelConfig(raw: unknown, source: string, options: ParseConfigOptions = {}): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw configError(source, 'config is not a JSON object');
  const json = raw as Json;
  const architecture = parseArchitecture(json, source);
  const modelType = MODEL_TYPES[architecture];
  const defaults = DEFAULTS[modelType];

  const act = json.hidden_act ?? 'silu';
  if (act !== 'silu') throw configError(source, `hidden_act ${JSON.stringify(act)} is not supported (only silu, the SwiGLU MLP)`);
  if (json.mlp_bias === true) throw configError(source, 'mlp_bias: true is not supported (MLP projections without biases only)');
  if (modelType === 'llama' && json.attention_bias === true) {
    throw configError(source, 'attention_bias: true is not supported for Llama (it adds an o_proj bias too); only Qwen2-style q/k/v biases are');
  }

  const vocabSize = positiveInt(json, 'vocab_size', source);
  const hiddenSize = positiveInt(json, 'hidden_size', source);
  const intermediateSize = positiveInt(json, 'intermediate_size', source);
  const numLayers = positiveInt(json, 'num_hidden_layers', source);
  const numHeads = positiveInt(json, 'num_attention_heads', source);
  const numKvHeads = positiveInt(json, 'num_key_value_heads', source, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw configError(source, `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  const hasHeadDim = json.head_dim !== undefined && json.head_dim !== null;
  if (!hasHeadDim && hiddenSize % numHeads !== 0) {
    throw configError(source, `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} (and no head_dim is given)`);
  }
  const headDim = hasHeadDim ? positiveInt(json, 'head_dim', source) : hiddenSize / numHeads;
  if (headDim % 2 !== 0) throw configError(source, `head_dim ${headDim} must be even for rotary embeddings`);
  const maxPositionEmbeddings = positiveInt(json, 'max_position_embeddings', source, defaults.maxPositionEmbeddings);
  const tie = json.tie_word_embeddings ?? defaults.tie;
  if (typeof tie !== 'boolean') throw configError(source, `"tie_word_embeddings" must be true or false, got ${JSON.stringify(tie)}`);
  const ropeParams = (json.rope_parameters ?? {}) as Json;
  const dtype = json.torch_dtype ?? json.dtype ?? null;

  return {
    architecture,
    modelType,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positiveNumber(json, 'rms_norm_eps', source, defaults.rmsNormEps),
    ropeTheta: positiveNumber(json, 'rope_theta', source, (ropeParams.rope_theta as number | undefined) ?? defaults.ropeTheta),
    ropeScaling: parseRopeScaling(json, source),
    tieWordEmbeddings: tie,
    attentionBias: modelType === 'qwen2',
    maxPositionEmbeddings,
    bosTokenId: tokenIds(json.bos_token_id, 'bos_token_id', vocabSize, source)[0] ?? null,
    eosTokenIds: tokenIds(json.eos_token_id, 'eos_token_id', vocabSize, source),
    slidingWindow: parseSlidingWindow(json, modelType, maxPositionEmbeddings, source, options),
    torchDtype: typeof dtype === 'string' ? dtype : null,
  };
}

/** Reads and checks `dir`/config.json. */
export async function readModelConfig(dir: string, options: ParseConfigOptions = {}): Promise<ModelConfig> {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    const hint = err.code === 'ENOENT' ? ' (a model directory needs config.json, its weights and tokenizer files)' : '';
    throw new SeqtuneError(`${file}: cannot read: ${err.code ?? ''} ${err.message}${hint}`, 'ERR_IO');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw configError(file, `not valid JSON (${(error as Error).message})`);
  }
  return parseModelConfig(json, file, options);
}

/** The config.json object transformers reads back into the same model. */
export function modelConfigToJson(config: ModelConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: [config.architecture],
    model_type: config.modelType,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    hidden_act: 'silu',
    max_position_embeddings: config.maxPositionEmbeddings,
    initializer_range: 0.02,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: ropeScalingToJson(config.ropeScaling),
    tie_word_embeddings: config.tieWordEmbeddings,
    attention_dropout: 0.0,
    use_cache: true,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    torch_dtype: config.torchDtype ?? 'float32',
  };
  if (config.modelType === 'qwen2') {
    // transformers' Qwen2 derives head_dim from hidden_size and has no bias switch.
    Object.assign(json, { use_sliding_window: false, sliding_window: null, max_window_layers: config.numLayers });
  } else {
    Object.assign(json, { head_dim: config.headDim, mlp_bias: false });
    if (config.modelType === 'llama') Object.assign(json, { attention_bias: false, pretraining_tp: 1 });
    else json.sliding_window = config.slidingWindow;
  }
  return json;
}

function ropeScalingToJson(scaling: RopeScaling | null): Record<string, unknown> | null {
  if (!scaling) return null;
  if (scaling.type === 'linear') return { rope_type: 'linear', factor: scaling.factor };
  return {
    rope_type: 'llama3',
    factor: scaling.factor,
    low_freq_factor: scaling.lowFreqFactor,
    high_freq_factor: scaling.highFreqFactor,
    original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
  };
}

/** The shape arguments of LlamaModel (lib/model/llama.ts) for this config. */
export function llamaArch(config: ModelConfig): LlamaArch {
  return {
    vocabSize: config.vocabSize,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    numLayers: config.numLayers,
    numHeads: config.numHeads,
    numKvHeads: config.numKvHeads,
    headDim: config.headDim,
    rmsNormEps: config.rmsNormEps,
    rope: config.ropeScaling ? { theta: config.ropeTheta, scaling: config.ropeScaling } : { theta: config.ropeTheta },
    tieWordEmbeddings: config.tieWordEmbeddings,
    attentionBias: config.attentionBias,
    slidingWindow: config.slidingWindow,
  };
}
