/**
 * Before step 1: how many bytes a run needs (weights, trainable state, activations), so a run that
 * cannot fit is refused with the numbers instead of dying mid-epoch. On a GPU the base weights are
 * bf16 and the trainable ones keep f32 master weights, gradients and two AdamW moments (16 bytes per
 * trainable parameter beyond the bf16 copy); on the CPU everything is f32.
 */
import { SeqtuneError } from '../errors';
import type { LlamaArch } from '../model/llama';

export interface MemoryPlan {
  weights: number;
  trainableState: number;
  activations: number;
  total: number;
  trainableParams: number;
  totalParams: number;
}

export function parameterCount(arch: LlamaArch): number {
  const C = arch.hiddenSize;
  const q = arch.numHeads * arch.headDim;
  const kv = arch.numKvHeads * arch.headDim;
  const perLayer = 2 * C + C * q * 2 + C * kv * 2 + 3 * C * arch.intermediateSize + (arch.attentionBias ? q + 2 * kv : 0);
  return arch.vocabSize * C * (arch.tieWordEmbeddings ? 1 : 2) + C + arch.numLayers * perLayer;
}

export function loraParameterCount(arch: LlamaArch, r: number, targets: readonly string[]): number {
  const C = arch.hiddenSize;
  const q = arch.numHeads * arch.headDim;
  const kv = arch.numKvHeads * arch.headDim;
  const I = arch.intermediateSize;
  const dims: Record<string, [number, number]> = { q: [C, q], k: [C, kv], v: [C, kv], o: [q, C], gate: [C, I], up: [C, I], down: [I, C] };
  return arch.numLayers * targets.reduce((sum, t) => sum + r * (dims[t][0] + dims[t][1]), 0);
}

export function planMemory(
  arch: LlamaArch,
  options: { gpu: boolean; mode: 'lora' | 'full'; loraR: number; loraTargets: readonly string[]; microBatchTokens: number; activationCheckpointing: boolean },
): MemoryPlan {
  const totalParams = parameterCount(arch);
  const trainableParams = options.mode === 'full' ? totalParams : loraParameterCount(arch, options.loraR, options.loraTargets);
  const act = options.gpu ? 2 : 4;
  const weights = totalParams * (options.gpu ? 2 : 4);
  // f32 gradient + m + v, plus an f32 master copy on the GPU (the working copy is bf16).
  const trainableState = trainableParams * (options.gpu ? 16 : 12);
  const C = arch.hiddenSize;
  const qd = arch.numHeads * arch.headDim;
  const kvd = arch.numKvHeads * arch.headDim;
  const I = arch.intermediateSize;
  // What a block keeps for its backward, per token (lib/model/block.ts's cache).
  const perTokenLayer = (4 * C + 2 * qd + 2 * kvd + 3 * I) * act + arch.numHeads * 4;
  const keptLayers = options.activationCheckpointing ? 1 : arch.numLayers;
  const checkpoints = options.activationCheckpointing ? arch.numLayers * 2 * C * act : 0;
  // The fused LM head keeps [T, chunk] logits at a time; 4096 columns in f32.
  const head = 4096 * 4 + 2 * C * act;
  const activations = options.microBatchTokens * (keptLayers * perTokenLayer + checkpoints + head);
  return { weights, trainableState, activations, total: weights + trainableState + activations, trainableParams, totalParams };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/**
 * Throws ERR_OUT_OF_MEMORY naming the bytes needed, what the device has (`availableNote`, e.g.
 * "3.2 GiB free of 80 GiB on cuda:0"), and the settings that would make the run fit.
 */
export function checkFits(
  plan: MemoryPlan,
  available: number,
  device: string,
  hints: { mode: 'lora' | 'full'; microBatchTokens: number; activationCheckpointing?: boolean; availableNote?: string },
): void {
  if (plan.total <= available * 0.95) return;
  const fixed = plan.weights + plan.trainableState;
  const suggestions: string[] = [];
  if (fixed < available * 0.9) {
    const perToken = plan.activations / hints.microBatchTokens;
    const tokens = Math.floor((available * 0.9 - fixed) / perToken);
    suggestions.push(`a smaller micro-batch: at most ${tokens} tokens (now ${hints.microBatchTokens}; --batch-tokens ${tokens}, or a smaller --batch-size or --max-length)`);
    if (!hints.activationCheckpointing) suggestions.push('--activation-checkpointing');
  }
  if (hints.mode === 'full') suggestions.push('LoRA instead of full fine-tuning (without --full)');
  throw new SeqtuneError(
    `this run needs about ${gib(plan.total)} on ${device} (weights ${gib(plan.weights)}, trainable state ${gib(plan.trainableState)}, ` +
      `activations ${gib(plan.activations)}) but ${hints.availableNote ?? `${gib(available)} is available`}` +
      (suggestions.length ? `; what would fit: ${suggestions.join(', or ')}` : '; the weights alone do not fit this device'),
    'ERR_OUT_OF_MEMORY',
  );
}
