/**
 * Everything a training run is configured by, its defaults, the paper's two recipes as named
 * presets (docs/method.md §4), and loading from a JSON or YAML file. Validation
 * names the field and what was expected, so a bad config is one clear message.
 */
import * as fs from 'node:fs';
import * as YAML from 'yaml';
import { SeqtuneError } from '../errors';
import { WEIGHTS_DTYPES, WeightsDtypeSpec } from '../device';
import type { LinearName } from '../model/block';
import { linearNames } from '../model/block';
import type { ScheduleKind } from './schedule';

export interface TrainConfig {
  /** Hugging Face model directory */
  model: string;
  /** training data files (Alpaca JSON/JSONL, ShareGPT, chat messages) */
  data: string[];
  out: string;
  /** dev set file, or the last valSize training examples */
  dev?: string;
  valSize: number;
  mode: 'lora' | 'full';
  lora: { r: number; alpha: number; dropout: number; targets: LinearName[]; useRslora: boolean };
  optimizer: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };
  schedule: { kind: ScheduleKind; warmupSteps?: number; warmupRatio?: number };
  epochs: number;
  /** overrides epochs when set */
  maxSteps?: number;
  /** micro-batch size: examples per micro-batch, or a token budget when batchTokens is set */
  batchSize: number;
  batchTokens?: number;
  /** micro-batches per optimizer step (1 when stepExamples is set) */
  gradAccum: number;
  /**
   * Examples per optimizer step, whatever packing does: the shuffled examples are cut into steps of
   * exactly this many (the epoch's last may hold fewer), each packed into micro-batches of at most
   * the micro-batch's tokens (batchTokens, or batchSize × maxLength). Unset: gradAccum micro-batches.
   */
  stepExamples?: number;
  maxLength: number;
  packing: boolean;
  lossMask: 'response' | 'all';
  template: 'alpaca' | 'tulu' | 'chat';
  maxGradNorm: number;
  seed: number;
  device: string;
  evalEvery: number;
  saveEvery: number;
  keepCheckpoints: number;
  logEvery: number;
  activationCheckpointing: boolean;
  /** dtype of the model's weights: auto = bf16 on a GPU (f32 masters for trainable ones), f32 on the CPU */
  weightsDtype: WeightsDtypeSpec;
}

export const defaultConfig: Omit<TrainConfig, 'model' | 'data' | 'out'> = {
  valSize: 0,
  mode: 'lora',
  lora: { r: 16, alpha: 32, dropout: 0.05, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], useRslora: false },
  optimizer: { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
  schedule: { kind: 'linear', warmupRatio: 0.03 },
  epochs: 3,
  batchSize: 4,
  gradAccum: 1,
  maxLength: 2048,
  packing: true,
  lossMask: 'response',
  template: 'tulu',
  maxGradNorm: 1,
  seed: 42,
  device: 'auto',
  evalEvery: 100,
  saveEvery: 100,
  keepCheckpoints: 2,
  logEvery: 1,
  activationCheckpointing: false,
  weightsDtype: 'auto',
};

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/** The paper's recipes: v1 (Alpaca-LoRA code) and the NAACL full fine-tuning (open-instruct code). */
export const presets: Record<string, { description: string; config: DeepPartial<TrainConfig> }> = {
  'sit-v1-lora': {
    description:
      'SIT v1: LoRA r=16 (alpha 16, dropout 0.05) on q,k,v,o; lr 3e-4, 100 warmup steps then linear decay; 5 epochs; exactly 64 examples per optimizer step, ' +
      'packed into micro-batches of at most 4 x 512 tokens; length 512; Alpaca template; loss on the prompt too; 500 examples held out for dev loss',
    config: {
      mode: 'lora',
      lora: { r: 16, alpha: 16, dropout: 0.05, targets: ['q', 'k', 'v', 'o'], useRslora: false },
      optimizer: { lr: 3e-4, weightDecay: 0 },
      schedule: { kind: 'linear', warmupSteps: 100 },
      epochs: 5,
      stepExamples: 64,
      batchSize: 4,
      maxLength: 512,
      lossMask: 'all',
      template: 'alpaca',
      valSize: 500,
      evalEvery: 500,
      saveEvery: 100,
    },
  },
  'sit-naacl-full': {
    description:
      'SIT NAACL: full fine-tuning; lr 2e-5, linear with warmup ratio 0.03, no weight decay, no gradient clipping; 3 epochs; exactly 128 examples per optimizer step, ' +
      'packed into micro-batches of at most 2048 tokens; length 2048; Tulu template; loss on responses; activation checkpointing',
    config: {
      mode: 'full',
      optimizer: { lr: 2e-5, weightDecay: 0 },
      schedule: { kind: 'linear', warmupRatio: 0.03 },
      epochs: 3,
      stepExamples: 128,
      batchSize: 1,
      maxLength: 2048,
      lossMask: 'response',
      template: 'tulu',
      seed: 42,
      maxGradNorm: 0,
      evalEvery: 100,
      activationCheckpointing: true,
    },
  },
};

function fail(field: string, expected: string, got: unknown): never {
  throw new SeqtuneError(`config: ${field} must be ${expected}, got ${JSON.stringify(got)}`, 'ERR_CONFIG');
}

function merge<T>(base: T, over: unknown, path: string): T {
  if (over === undefined) return base;
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return over as T;
  if (typeof over !== 'object' || over === null || Array.isArray(over)) fail(path || 'config', 'an object', over);
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(over as Record<string, unknown>)) {
    const field = path ? `${path}.${key}` : key;
    if (!(key in out) && !optionalKeys.has(field)) throw new SeqtuneError(`config: unknown field '${field}'`, 'ERR_CONFIG');
    out[key] = merge(out[key], value, field);
  }
  return out as T;
}

const optionalKeys = new Set(['model', 'data', 'out', 'dev', 'maxSteps', 'batchTokens', 'stepExamples', 'schedule.warmupSteps', 'schedule.warmupRatio', 'preset']);

/**
 * Builds a validated config from layers applied in order: defaults, a preset, a config file's
 * contents, then explicit overrides (CLI flags).
 */
export function resolveConfig(layers: Array<DeepPartial<TrainConfig> & { preset?: string }>): TrainConfig {
  let config = { ...defaultConfig } as TrainConfig & { preset?: string };
  for (const layer of layers) {
    if (layer.preset !== undefined) {
      const preset = presets[layer.preset];
      if (!preset) fail('preset', `one of ${Object.keys(presets).join(', ')}`, layer.preset);
      config = merge(config, preset.config, '');
    }
    const { preset: _preset, ...rest } = layer;
    void _preset;
    config = merge(config, rest, '');
  }
  delete config.preset;
  validate(config);
  return config;
}

export function loadConfigFile(file: string): DeepPartial<TrainConfig> & { preset?: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new SeqtuneError(`cannot read config file ${file}: ${(error as Error).message}`, 'ERR_CONFIG');
  }
  try {
    const parsed = /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the top level must be an object');
    return parsed;
  } catch (error) {
    throw new SeqtuneError(`config file ${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(error as Error).message}`, 'ERR_CONFIG');
  }
}

function positive(field: string, v: unknown, integer = false): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    fail(field, integer ? 'a positive integer' : 'a positive number', v);
  }
}

function nonNegative(field: string, v: unknown, integer = false): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) {
    fail(field, integer ? 'a non-negative integer' : 'a non-negative number', v);
  }
}

function oneOf(field: string, v: unknown, options: readonly string[]): void {
  if (typeof v !== 'string' || !options.includes(v)) fail(field, `one of ${options.join(', ')}`, v);
}

export function validate(c: TrainConfig): void {
  if (typeof c.model !== 'string' || !c.model) fail('model', 'a model directory or Hub id (ORG/NAME[@REV])', c.model);
  if (!Array.isArray(c.data) || c.data.length === 0 || c.data.some((d) => typeof d !== 'string' || !d)) fail('data', 'a non-empty list of files', c.data);
  if (typeof c.out !== 'string' || !c.out) fail('out', 'an output directory', c.out);
  oneOf('mode', c.mode, ['lora', 'full']);
  positive('lora.r', c.lora.r, true);
  positive('lora.alpha', c.lora.alpha);
  if (!(c.lora.dropout >= 0 && c.lora.dropout < 1)) fail('lora.dropout', 'in [0, 1)', c.lora.dropout);
  if (!Array.isArray(c.lora.targets) || c.lora.targets.length === 0 || c.lora.targets.some((t) => !linearNames.includes(t))) {
    fail('lora.targets', `a non-empty list of ${linearNames.join(', ')}`, c.lora.targets);
  }
  positive('optimizer.lr', c.optimizer.lr);
  if (!(c.optimizer.beta1 >= 0 && c.optimizer.beta1 < 1)) fail('optimizer.beta1', 'in [0, 1)', c.optimizer.beta1);
  if (!(c.optimizer.beta2 >= 0 && c.optimizer.beta2 < 1)) fail('optimizer.beta2', 'in [0, 1)', c.optimizer.beta2);
  positive('optimizer.eps', c.optimizer.eps);
  nonNegative('optimizer.weightDecay', c.optimizer.weightDecay);
  oneOf('schedule.kind', c.schedule.kind, ['constant', 'linear', 'cosine']);
  if (c.schedule.warmupSteps !== undefined) nonNegative('schedule.warmupSteps', c.schedule.warmupSteps, true);
  if (c.schedule.warmupRatio !== undefined && !(c.schedule.warmupRatio >= 0 && c.schedule.warmupRatio < 1)) {
    fail('schedule.warmupRatio', 'in [0, 1)', c.schedule.warmupRatio);
  }
  positive('epochs', c.epochs);
  if (c.maxSteps !== undefined) positive('maxSteps', c.maxSteps, true);
  positive('batchSize', c.batchSize, true);
  if (c.batchTokens !== undefined) positive('batchTokens', c.batchTokens, true);
  positive('gradAccum', c.gradAccum, true);
  if (c.stepExamples !== undefined) {
    positive('stepExamples', c.stepExamples, true);
    if (c.gradAccum !== 1) {
      throw new SeqtuneError(
        `config: gradAccum is ${c.gradAccum} and stepExamples is ${c.stepExamples}: a step is either gradAccum micro-batches or stepExamples examples; ` +
          `set one (a preset sets stepExamples: change it with --step-examples)`,
        'ERR_CONFIG',
      );
    }
  }
  positive('maxLength', c.maxLength, true);
  oneOf('lossMask', c.lossMask, ['response', 'all']);
  oneOf('template', c.template, ['alpaca', 'tulu', 'chat']);
  nonNegative('maxGradNorm', c.maxGradNorm);
  nonNegative('seed', c.seed, true);
  nonNegative('valSize', c.valSize, true);
  positive('evalEvery', c.evalEvery, true);
  positive('saveEvery', c.saveEvery, true);
  positive('keepCheckpoints', c.keepCheckpoints, true);
  positive('logEvery', c.logEvery, true);
  if (typeof c.packing !== 'boolean') fail('packing', 'true or false', c.packing);
  if (typeof c.activationCheckpointing !== 'boolean') fail('activationCheckpointing', 'true or false', c.activationCheckpointing);
  if (!/^(auto|cpu|cuda:\d+)$/.test(c.device)) fail('device', 'auto, cpu or cuda:N', c.device);
  oneOf('weightsDtype', c.weightsDtype, [...WEIGHTS_DTYPES]);
}
