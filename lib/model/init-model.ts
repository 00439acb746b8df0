/**
 * A randomly initialised model directory in Hugging Face layout (config.json, safetensors,
 * tokenizer.json, tokenizer_config.json) that transformers and seqtune both load: for tests and
 * demos without downloading weights, and for measuring the real 1b/8b shapes.
 *
 * Initialisation follows transformers' _init_weights for these models: every projection and the
 * embedding ~ N(0, initializer_range = 0.02), biases 0, RMSNorm weights 1. Draws come from the
 * counter-based Rng in a fixed order (the state_dict order), so a seed gives the same bytes on any
 * machine. Tensors are generated as the writer reaches them and freed once written: memory holds
 * one tensor, even for 8b (its largest, the embedding, is 128256 x 4096).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SeqtuneError } from '../errors';
import { Rng } from '../rng';
import { full, randn, zeros } from '../tensor';
import { modelConfigToJson, ModelConfig } from './config';
import { writeJsonAtomic } from './io/atomic';
import { DEFAULT_MAX_SHARD_BYTES, writeCheckpoint } from './io/checkpoint';
import { ioError } from './io/safetensors';
import { safetensorsDType } from './io/safetensors-format';
import { TensorEntry } from './io/safetensors-writer';
import { simpleTokenizerFiles, SimpleTokenizerKind, writeTokenizerFiles } from './io/simple-tokenizer';
import { expectedWeights, parameterCount } from './io/weights';
import { PresetArch, PresetName, presetConfig } from './presets';

export const INITIALIZER_RANGE = 0.02;

export interface InitModelOptions {
  preset: PresetName;
  /** output directory; created if missing, refused if it exists and is not empty */
  out: string;
  arch?: PresetArch;
  tokenizer?: SimpleTokenizerKind;
  /** characters of the char-level tokenizer (default: printable ASCII, newline, tab) */
  alphabet?: string;
  seed?: number;
  dtype?: 'f32' | 'bf16';
  /** default 5e9, as transformers */
  maxShardBytes?: number;
  /** called before each tensor is generated */
  onTensor?: (name: string, index: number, total: number) => void;
}

export interface InitModelResult {
  dir: string;
  config: ModelConfig;
  /** file names written into dir */
  files: string[];
  parameters: number;
  seed: number;
}

async function prepareOutDir(out: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.readdir(out);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') {
      await fs.mkdir(out, { recursive: true }).catch((e: unknown) => Promise.reject(ioError(out, 'create the output directory', e)));
      return;
    }
    if (err.code === 'ENOTDIR') throw new SeqtuneError(`${out} exists and is not a directory (expected a new or empty output directory)`, 'ERR_IO');
    throw ioError(out, 'read the output directory', error);
  }
  if (entries.length > 0) {
    throw new SeqtuneError(`${out} is not empty (${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', ...' : ''}); init-model writes only into a new or empty directory`, 'ERR_IO');
  }
}

/** The tensors of a fresh model, each generated when the writer asks for it. */
function initialEntries(config: ModelConfig, rng: Rng, dtype: 'f32' | 'bf16', onTensor?: InitModelOptions['onTensor']): TensorEntry[] {
  const shapes = [...expectedWeights(config)];
  return shapes.map(([name, shape], index) => ({
    name,
    dtype: safetensorsDType(dtype),
    shape,
    data: () => {
      onTensor?.(name, index, shapes.length);
      if (name.endsWith('norm.weight')) return full(shape, 1, { dtype });
      if (name.endsWith('.bias')) return zeros(shape, { dtype });
      return randn(shape, { rng, std: INITIALIZER_RANGE, dtype });
    },
  }));
}

export async function initModel(options: InitModelOptions): Promise<InitModelResult> {
  const seed = options.seed ?? 0;
  const rng = new Rng(seed);
  const dtype = options.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'bf16') throw new SeqtuneError(`dtype must be f32 or bf16, got ${String(dtype)}`, 'ERR_ARGUMENT');
  // The tokenizer decides the special ids the config records; its vocab is padded to the preset's.
  const probe = presetConfig(options.preset, { arch: options.arch, bosTokenId: null, eosTokenId: 0 });
  const tokenizer = simpleTokenizerFiles(options.tokenizer ?? 'byte', probe.vocabSize, {
    alphabet: options.alphabet,
    maxLength: probe.maxPositionEmbeddings,
  });
  const config = presetConfig(options.preset, {
    arch: options.arch,
    bosTokenId: tokenizer.bosId,
    eosTokenId: tokenizer.eosId,
    torchDtype: dtype === 'bf16' ? 'bfloat16' : 'float32',
  });

  await prepareOutDir(options.out);
  const files = await writeCheckpoint(options.out, initialEntries(config, rng, dtype, options.onTensor), {
    maxShardBytes: options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES,
  });
  await writeTokenizerFiles(options.out, tokenizer);
  await writeJsonAtomic(path.join(options.out, 'config.json'), modelConfigToJson(config));
  return {
    dir: options.out,
    config,
    files: [...files, 'tokenizer.json', 'tokenizer_config.json', 'config.json'],
    parameters: parameterCount(config),
    seed,
  };
}
