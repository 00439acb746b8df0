/**
 * Model shapes for `seqtune init-model`. tiny is for tests (a forward/backward in milliseconds),
 * small is the CPU demo, 1b and 8b have the exact shapes of Llama-3.2-1B and Llama-3-8B so that
 * memory and speed can be measured on the real sizes without downloading weights.
 */
import { SeqtuneError } from '../errors';
import { Architecture, ModelConfig, ModelType } from './config';

export type PresetName = 'tiny' | 'small' | '1b' | '8b';
export type PresetArch = 'llama' | 'qwen2';

export const PRESET_NAMES: readonly PresetName[] = ['tiny', 'small', '1b', '8b'];

type Shape = Pick<
  ModelConfig,
  'vocabSize' | 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'rmsNormEps' | 'ropeTheta' | 'ropeScaling' | 'tieWordEmbeddings' | 'maxPositionEmbeddings'
>;

const PRESETS: Readonly<Record<PresetName, Shape>> = {
  // vocab 320: the byte-level tokenizer's 263 ids, padded to a multiple of 64.
  tiny: {
    vocabSize: 320, hiddenSize: 64, intermediateSize: 176, numLayers: 2, numHeads: 4, numKvHeads: 2,
    rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, tieWordEmbeddings: false, maxPositionEmbeddings: 512,
  },
  small: {
    vocabSize: 320, hiddenSize: 256, intermediateSize: 688, numLayers: 4, numHeads: 8, numKvHeads: 4,
    rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, tieWordEmbeddings: false, maxPositionEmbeddings: 1024,
  },
  '1b': {
    vocabSize: 128256, hiddenSize: 2048, intermediateSize: 8192, numLayers: 16, numHeads: 32, numKvHeads: 8,
    rmsNormEps: 1e-5, ropeTheta: 500000, tieWordEmbeddings: true, maxPositionEmbeddings: 131072,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
  },
  '8b': {
    vocabSize: 128256, hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKvHeads: 8,
    rmsNormEps: 1e-5, ropeTheta: 500000, ropeScaling: null, tieWordEmbeddings: false, maxPositionEmbeddings: 8192,
  },
};

const ARCHS: Readonly<Record<PresetArch, { architecture: Architecture; modelType: ModelType }>> = {
  llama: { architecture: 'LlamaForCausalLM', modelType: 'llama' },
  qwen2: { architecture: 'Qwen2ForCausalLM', modelType: 'qwen2' },
};

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

/** The config of a preset; qwen2 differs from llama only by its q/k/v biases. */
export function presetConfig(
  name: PresetName,
  options: { arch?: PresetArch; bosTokenId: number | null; eosTokenId: number; torchDtype?: string },
): ModelConfig {
  const shape = PRESETS[name];
  const arch = ARCHS[options.arch ?? 'llama'];
  if (!shape || !arch) throw new SeqtuneError(`unknown preset ${name} / arch ${options.arch}`, 'ERR_ARGUMENT');
  return {
    ...arch,
    ...shape,
    headDim: shape.hiddenSize / shape.numHeads,
    attentionBias: arch.modelType === 'qwen2',
    bosTokenId: options.bosTokenId,
    eosTokenIds: [options.eosTokenId],
    slidingWindow: null,
    torchDtype: options.torchDtype ?? 'float32',
  };
}
