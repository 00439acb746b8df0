/**
 * A model directory in Hugging Face layout: config.json, model.safetensors (or shards + index),
 * tokenizer.json (+ tokenizer_config.json). openModelDir checks the parts against each other
 * before any weight is read; loadWeights reads them one tensor at a time; saveModelDir writes a
 * (fine-tuned) model back in the same layout.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SeqtuneError } from '../../errors';
import { cast } from '../../ops';
import { DType, Tensor } from '../../tensor';
import { modelConfigToJson, ModelConfig, ParseConfigOptions, readModelConfig } from '../config';
import { HfTokenizer, TokenizerOverrides } from '../tokenizer';
import { writeAll, writeFileAtomic, writeJsonAtomic } from './atomic';
import { CheckpointReader, writeCheckpoint, WriteCheckpointOptions } from './checkpoint';
import { ioError, ReadTensorOptions } from './safetensors';
import { safetensorsDType } from './safetensors-format';
import { TensorEntry } from './safetensors-writer';
import { checkWeights, expectedWeights } from './weights';

export interface ModelDir {
  readonly dir: string;
  readonly config: ModelConfig;
  readonly weights: CheckpointReader;
  readonly tokenizer: HfTokenizer;
  /** tensors in the checkpoint that the model does not use (e.g. rotary inv_freq buffers) */
  readonly ignoredWeights: readonly string[];
  close(): Promise<void>;
}

export type OpenModelOptions = ParseConfigOptions & TokenizerOverrides;

async function requireDirectory(dir: string): Promise<void> {
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new SeqtuneError(`model directory ${dir} does not exist (expected a folder with config.json, model.safetensors and tokenizer.json)`, 'ERR_IO');
    throw ioError(dir, 'open the model directory', error);
  }
  if (!stat.isDirectory()) throw new SeqtuneError(`${dir} is not a directory (expected a model folder with config.json, model.safetensors and tokenizer.json)`, 'ERR_IO');
}

/**
 * Opens a model directory: reads config.json, opens the weights and checks every name and shape
 * against the config, loads the tokenizer and checks its ids fit the embedding. Each problem is one
 * SeqtuneError saying what was expected. Close it (or its weights) when done.
 */
export async function openModelDir(dir: string, options: OpenModelOptions = {}): Promise<ModelDir> {
  await requireDirectory(dir);
  const config = await readModelConfig(dir, options);
  const weights = await CheckpointReader.open(dir);
  try {
    const ignoredWeights = checkWeights(config, weights.shapes(), weights.source);
    const tokenizer = await HfTokenizer.fromDir(dir, options);
    if (tokenizer.vocabSize > config.vocabSize) {
      throw new SeqtuneError(
        `${dir}: the tokenizer has ${tokenizer.vocabSize} ids but config.json's vocab_size is ${config.vocabSize}: its ids would index past the embedding`,
        'ERR_CONFIG',
      );
    }
    return { dir, config, weights, tokenizer, ignoredWeights, close: () => weights.close() };
  } catch (error) {
    await weights.close();
    throw error;
  }
}

/** Reads every weight the config implies into tensors (e.g. for `new LlamaModel(arch, weights)`). */
export async function loadWeights(model: Pick<ModelDir, 'config' | 'weights'>, options: ReadTensorOptions = {}): Promise<Map<string, Tensor>> {
  const out = new Map<string, Tensor>();
  try {
    for (const name of expectedWeights(model.config).keys()) out.set(name, await model.weights.readTensor(name, options));
  } catch (error) {
    for (const t of out.values()) t.dispose();
    throw error;
  }
  return out;
}

/** Files copied from the base model so a saved model directory is complete. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json', 'generation_config.json'];

export interface SaveModelOptions extends WriteCheckpointOptions {
  /** store weights in this dtype (cast one tensor at a time); default: each tensor's own */
  dtype?: DType;
  /** a model directory to copy the tokenizer files (and generation_config.json) from */
  tokenizerFrom?: string;
}

const TORCH_DTYPES: Readonly<Record<DType, string>> = { f32: 'float32', bf16: 'bfloat16', f16: 'float16', f64: 'float64', i32: 'int32' };

/**
 * Writes config.json and the weights (the tensors `config` implies, from `weights`) into `dir`,
 * created if needed, plus the tokenizer files of `tokenizerFrom`; config.json last. Returns the
 * file names written.
 */
export async function saveModelDir(dir: string, config: ModelConfig, weights: ReadonlyMap<string, Tensor>, options: SaveModelOptions = {}): Promise<string[]> {
  checkWeights(config, new Map([...weights].map(([n, t]) => [n, t.shape])), 'the weights to save');
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (error) {
    throw ioError(dir, 'create the directory', error);
  }
  const stored = new Set<DType>();
  const entries: TensorEntry[] = [...expectedWeights(config).keys()].map((name) => {
    const t = weights.get(name) as Tensor;
    const dtype = options.dtype ?? t.dtype;
    stored.add(dtype);
    // A cast copy is produced when the writer reaches it and disposed once written.
    return { name, dtype: safetensorsDType(dtype), shape: t.shape, data: dtype === t.dtype ? t : () => cast(t, dtype) };
  });
  const written = await writeCheckpoint(dir, entries, options);
  if (options.tokenizerFrom) {
    for (const file of TOKENIZER_FILES) {
      const from = path.join(options.tokenizerFrom, file);
      const bytes = await fs.readFile(from).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT' && file !== 'tokenizer.json') return null;
        throw ioError(from, 'read the tokenizer file to copy', error);
      });
      if (!bytes) continue;
      await writeFileAtomic(path.join(dir, file), (handle) => writeAll(handle, bytes));
      written.push(file);
    }
  }
  const torchDtype = stored.size === 1 ? TORCH_DTYPES[[...stored][0]] : config.torchDtype;
  await writeJsonAtomic(path.join(dir, 'config.json'), modelConfigToJson({ ...config, torchDtype }));
  written.push('config.json');
  return written;
}
