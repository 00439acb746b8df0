/**
 * From a Hugging Face model directory (or a Hub id, resolved through the cache: lib/hub) to a
 * trainable LlamaModel: config.json (checked), the weights
 * (single file or shards, checked against the config before anything is read), the tokenizer, and
 * optionally a PEFT adapter or fresh LoRA adapters.
 */
import { SeqtuneError } from '../errors';
import { resolveModel, ResolvedModel } from '../hub/resolve';
import { Rng } from '../rng';
import { DType, Tensor } from '../tensor';
import { loadAdapter } from './adapter';
import { llamaArch, ModelConfig, readModelConfig } from './config';
import { CheckpointReader } from './io/checkpoint';
import { checkWeights, expectedWeights } from './io/weights';
import { checkLoraRank, LlamaModel, LoraConfig } from './llama';
import { HfTokenizer } from './tokenizer';

export interface LoadModelOptions {
  device?: string;
  /** dtype of the weights in memory (default f32) */
  dtype?: DType;
  /** new LoRA adapters (A from rng, B zero) */
  lora?: LoraConfig;
  rng?: Rng;
  /** a PEFT adapter directory to load (its config decides the LoRA settings) */
  adapterDir?: string;
  /** tensors that replace the checkpoint's (a resumed full fine-tune) or seed the adapters (a resumed LoRA run) */
  overrides?: Map<string, Tensor>;
  /** recompute each block in the backward instead of keeping its activations */
  activationCheckpointing?: boolean;
  /**
   * The longest sequence this model will run (training: maxLength). A sliding attention window
   * shorter than the context (Mistral-7B-v0.1) is accepted when this fits in it, and refused with
   * the reason otherwise. 'per-generation': accepted, and generate() refuses any prompt plus new
   * tokens beyond the window (eval and generate, whose lengths are known only per call).
   */
  maxSeqLen?: number | 'per-generation';
}

export interface LoadedModel {
  model: LlamaModel;
  tokenizer: HfTokenizer;
  config: ModelConfig;
  /** the folder loaded (a cache snapshot for a Hub id) */
  dir: string;
  /** the Hub id, or the folder's absolute path: what an adapter records as its base model */
  name: string;
}

/**
 * `source` is a local folder or ORG/NAME[@REVISION] (the local folder wins when both exist), or
 * what resolveModel already made of one (train reads config.json first, for its memory check).
 */
export async function loadModel(source: string | ResolvedModel, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const { dir, name } = typeof source === 'string' ? await resolveModel(source) : source;
  const device = options.device ?? 'cpu';
  const config = await readModelConfig(dir, { maxSeqLen: options.maxSeqLen === 'per-generation' ? 0 : options.maxSeqLen });
  if (options.lora) checkLoraRank(llamaArch(config), options.lora);
  const tokenizer = await HfTokenizer.fromDir(dir);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new SeqtuneError(
      `${tokenizer.source}: token ids go up to ${tokenizer.vocabSize - 1}, out of range for config.json's vocab_size ${config.vocabSize} (ids 0..${config.vocabSize - 1})`,
      'ERR_CONFIG',
    );
  }
  const reader = await CheckpointReader.open(dir);
  const weights = new Map<string, Tensor>();
  try {
    checkWeights(config, reader.shapes(), reader.source);
    for (const name of expectedWeights(config).keys()) {
      const override = options.overrides?.get(name);
      weights.set(name, override ?? (await reader.readTensor(name, { device, dtype: options.dtype ?? 'f32' })));
    }
  } catch (error) {
    for (const t of weights.values()) t.dispose();
    throw error;
  } finally {
    await reader.close();
  }
  let lora = options.lora;
  let adapterWeights = options.overrides && new Map([...options.overrides].filter(([n]) => n.includes('.lora_')));
  if (options.adapterDir) {
    const adapter = await loadAdapter(options.adapterDir, { device });
    lora = adapter.config;
    adapterWeights = adapter.weights;
  }
  const model = new LlamaModel(llamaArch(config), weights, {
    device,
    lora,
    rng: options.rng,
    adapterWeights,
    activationCheckpointing: options.activationCheckpointing,
  });
  return { model, tokenizer, config, dir, name };
}
