/**
 * PEFT-compatible LoRA adapters: adapter_model.safetensors with PEFT's key names
 * (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, lora_A [r, in], lora_B [out, r])
 * and adapter_config.json, so `PeftModel.from_pretrained(base, dir)` loads what seqtune trains and
 * seqtune loads adapters trained with peft. Also merging an adapter into the base weights.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SeqtuneError } from '../errors';
import { add, matmul } from '../ops';
import { Tensor } from '../tensor';
import { LinearName, linearNames } from './block';
import { writeJsonAtomic } from './io/atomic';
import { SafetensorsFile } from './io/safetensors';
import { tensorEntry, writeSafetensors } from './io/safetensors-writer';
import { LlamaModel, LoraConfig, loraScale } from './llama';

export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const ADAPTER_CONFIG = 'adapter_config.json';
const PEFT_PREFIX = 'base_model.model.';

/** seqtune's `model.layers.0.self_attn.q_proj.lora_A` <-> PEFT's key. */
export function peftKey(name: string): string {
  return `${PEFT_PREFIX}${name}.weight`;
}

export function fromPeftKey(key: string): string | null {
  if (!key.startsWith(PEFT_PREFIX) || !key.endsWith('.weight')) return null;
  const name = key.slice(PEFT_PREFIX.length, -'.weight'.length);
  return /\.lora_[AB]$/.test(name) ? name : null;
}

const peftModule: Record<LinearName, string> = {
  q: 'q_proj',
  k: 'k_proj',
  v: 'v_proj',
  o: 'o_proj',
  gate: 'gate_proj',
  up: 'up_proj',
  down: 'down_proj',
};

export async function saveAdapter(model: LlamaModel, dir: string, baseModelName: string): Promise<void> {
  if (!model.lora) throw new SeqtuneError('saveAdapter: the model has no LoRA adapters', 'ERR_ARGUMENT');
  await fs.mkdir(dir, { recursive: true });
  const entries = [...model.trainable()].map(([name, t]) => tensorEntry(peftKey(name), t));
  await writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), entries, { format: 'pt' });
  const lora = model.lora;
  await writeJsonAtomic(path.join(dir, ADAPTER_CONFIG), {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModelName,
    r: lora.r,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: lora.targets.map((t) => peftModule[t]),
    use_rslora: lora.useRslora,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    revision: null,
  });
}

export interface LoadedAdapter {
  config: LoraConfig;
  weights: Map<string, Tensor>;
  baseModel: string | null;
}

export async function loadAdapter(dir: string, options: { device?: string } = {}): Promise<LoadedAdapter> {
  const configFile = path.join(dir, ADAPTER_CONFIG);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await fs.readFile(configFile, 'utf8'));
  } catch (error) {
    throw new SeqtuneError(`cannot read adapter config ${configFile}: ${(error as Error).message}`, 'ERR_IO');
  }
  if (raw.peft_type !== 'LORA') throw new SeqtuneError(`${configFile}: peft_type is ${JSON.stringify(raw.peft_type)}, only LORA adapters are supported`, 'ERR_CONFIG');
  const modules = raw.target_modules;
  if (!Array.isArray(modules) || modules.length === 0) throw new SeqtuneError(`${configFile}: target_modules must be a non-empty list`, 'ERR_CONFIG');
  const targets = modules.map((m) => {
    const name = linearNames.find((n) => peftModule[n] === m);
    if (!name) throw new SeqtuneError(`${configFile}: unsupported target module '${String(m)}' (supported: ${Object.values(peftModule).join(', ')})`, 'ERR_CONFIG');
    return name;
  });
  const r = Number(raw.r);
  const alpha = Number(raw.lora_alpha ?? r);
  if (!Number.isInteger(r) || r <= 0) throw new SeqtuneError(`${configFile}: r must be a positive integer`, 'ERR_CONFIG');
  const config: LoraConfig = { r, alpha, dropout: Number(raw.lora_dropout ?? 0), targets, useRslora: raw.use_rslora === true };
  const file = await SafetensorsFile.open(path.join(dir, ADAPTER_WEIGHTS));
  const weights = new Map<string, Tensor>();
  try {
    for (const key of file.names()) {
      const name = fromPeftKey(key);
      if (!name) throw new SeqtuneError(`${file.path}: unexpected tensor '${key}' (expected PEFT LoRA keys like ${peftKey('model.layers.0.self_attn.q_proj.lora_A')})`, 'ERR_IO');
      weights.set(name, await file.readTensor(key, { device: options.device, dtype: 'f32' }));
    }
  } finally {
    await file.close();
  }
  return { config, weights, baseModel: typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : null };
}

/**
 * W + scale·B·A for every adapted layer, by Hugging Face name (the merged weights of a full
 * checkpoint); base weights of other layers are returned as they are.
 */
export function mergedWeights(model: LlamaModel): Map<string, Tensor> {
  if (!model.lora) throw new SeqtuneError('mergedWeights: the model has no LoRA adapters', 'ERR_ARGUMENT');
  const out = new Map<string, Tensor>();
  const scale = loraScale(model.lora);
  const adapters = model.trainable();
  for (const [name, t] of model.tensors()) {
    if (name.includes('.lora_')) continue;
    const base = name.replace(/\.weight$/, '');
    const a = adapters.get(`${base}.lora_A`);
    const b = adapters.get(`${base}.lora_B`);
    out.set(name, a && b ? add(t, matmul(b, a, { alpha: scale }).reshape(t.shape)) : t);
  }
  return out;
}
