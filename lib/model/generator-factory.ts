/**
 * A Generator (lib/eval/generator.ts) over a model directory and optional adapter: what
 * `seqtune eval` uses to produce outputs. Greedy decoding, batched with the KV cache.
 */
import type { GenerateOptions as EvalGenerateOptions, Generator } from '../eval/generator';
import { resolveDevice, weightsDtype } from '../device';
import { generate } from './generate';
import { loadModel } from './load';

export async function createGenerator(
  modelDir: string,
  adapterDir: string | undefined,
  device: string | undefined,
  weightsDtypeSpec?: string,
): Promise<Generator> {
  const resolved = resolveDevice(device ?? 'auto');
  if (resolved.fallbackReason) process.stderr.write(`device: cpu (${resolved.fallbackReason})\n`);
  const dtype = weightsDtype(weightsDtypeSpec, resolved.device);
  const { model, tokenizer } = await loadModel(modelDir, { device: resolved.device, dtype, adapterDir, maxSeqLen: 'per-generation' });
  process.stderr.write(`weights: ${dtype} on ${resolved.device}\n`);
  return {
    async generate(prompts: string[], options: EvalGenerateOptions): Promise<string[]> {
      const out = await generate(model, tokenizer, prompts, { maxNewTokens: options.maxNewTokens, stop: options.stop });
      return out.map((g) => g.text);
    },
  };
}
