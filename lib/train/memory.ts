/**
 * Before step 1: how many bytes a run needs (weights, trainable state, activations), so a run that
 * cannot fit is refused with the numbers instead of dying mid-epoch. What is counted follows the
 * code that holds the memory:
 * - weights: bf16 on a GPU, f32 on the CPU;
 * - trainable state: two f32 AdamW moments; full fine-tuning of bf16 weights adds an f32 master
 *   copy (lib/train/trainer.ts) and a gradient in the weights' dtype; LoRA adapters are f32, their
 *   gradients too;
 * - activations: what each block's forward keeps until its backward (lib/model/block.ts's cache,
 *   plus the pre-RoPE q and k and the projections' outputs, which live as long), or with
 *   activation checkpointing each block's input and residual plus one recomputed block; one
 *   block's backward temporaries (lib/model/llama.ts releases them block by block); and the fused
 *   LM head's f32 logits chunk and gradients.
 * Before the backward released each block's tensors, this model with every block's temporaries
 * held predicted the H200's measured peaks to within 6% on all five bench/train rows (bench/NOTES.md).
 * On the CPU backend it overestimates (small preset, 2 x 512 tokens: 1.25-2.1x the peak), which
 * errs on the side of refusing.
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
  const weights = totalParams * act;
  // m + v in f32; full fine-tuning: the gradient in the weights' dtype, and on a GPU the f32
  // master copy; LoRA: f32 adapters and gradients.
  const trainableState = trainableParams * (options.mode === 'full' ? 8 + act + (options.gpu ? 4 : 0) : 12);
  const C = arch.hiddenSize;
  const qd = arch.numHeads * arch.headDim;
  const kvd = arch.numKvHeads * arch.headDim;
  const I = arch.intermediateSize;
  const lora = options.mode === 'lora' ? options.loraTargets.length * options.loraR * 4 : 0;
  // Per token: a block's forward tensors (normed inputs and residual sums, q, k, v before and after
  // RoPE, attention output and lse, o, gate, up, SwiGLU, down, LoRA's x·Aᵀ), and its backward's.
  const forward = (6 * C + 3 * qd + 3 * kvd + 3 * I) * act + arch.numHeads * 4 + lora;
  const backward = (8 * C + 3 * qd + 3 * kvd + 2 * I) * act;
  const kept = options.activationCheckpointing ? arch.numLayers * 2 * C * act + forward : arch.numLayers * forward;
  // The fused LM head: [T, 4096] f32 logits at a time, the final norm's output and sum, f32 dh.
  const head = 4096 * 4 + 2 * C * act + C * 4;
  const activations = options.microBatchTokens * (kept + backward + head);
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
