/**
 * What a training step costs in model FLOPs, and the model-FLOP utilisation (MFU) it achieved: the
 * accounting of docs/performance.md §2, shared by the trainer's metrics and the
 * training benchmark. Recomputation is not counted, so activation checkpointing does not change it.
 */
import type { LinearName } from '../model/block';
import type { LlamaArch } from '../model/llama';

/** Dense bf16 tensor-core peak in TFLOP/s (docs/performance.md §1); the H200 has the H100 SXM's compute die. */
export function peakBf16Tflops(deviceName: string): number | null {
  if (/H100.*PCIe/i.test(deviceName)) return 756;
  if (/H100|H200/i.test(deviceName)) return 989.4;
  if (/A100/i.test(deviceName)) return 312;
  return null;
}

/** Parameters that take part in matmuls: every projection and the LM head (a tied head counts once; the embedding lookup is no matmul). */
export function matmulParams(arch: LlamaArch): number {
  const C = arch.hiddenSize;
  const q = arch.numHeads * arch.headDim;
  const kv = arch.numKvHeads * arch.headDim;
  const perLayer = 2 * C * q + 2 * C * kv + 3 * C * arch.intermediateSize;
  return arch.numLayers * perLayer + arch.vocabSize * C;
}

/** Σ over adapted matrices of (d_in + d_out), for every layer. */
function adapterDims(arch: LlamaArch, targets: readonly LinearName[]): number {
  const C = arch.hiddenSize;
  const q = arch.numHeads * arch.headDim;
  const kv = arch.numKvHeads * arch.headDim;
  const I = arch.intermediateSize;
  const dims: Record<LinearName, number> = { q: C + q, k: C + kv, v: C + kv, o: q + C, gate: C + I, up: C + I, down: I + C };
  return arch.numLayers * targets.reduce((s, t) => s + dims[t], 0);
}

export interface FlopsSpec {
  mode: 'lora' | 'full';
  /**
   * the causal context a token sees, as a sequence length: the sequence length for one document
   * per row, Σ n² / Σ n over the documents of a packed batch (see attentionSpan)
   */
  seq: number;
  loraR: number;
  targets: readonly LinearName[];
}

/**
 * Model FLOPs per trained token:
 *   full: 6·N_mm + 6·L·T·d_q (causal attention, forward + backward)
 *   LoRA: 4·N_mm (forward + input gradients, no weight gradients) + 6·L·T·d_q + 6·r·Σ(d_in + d_out)
 */
export function flopsPerToken(arch: LlamaArch, spec: FlopsSpec): number {
  const attention = 6 * arch.numLayers * spec.seq * arch.numHeads * arch.headDim;
  if (spec.mode === 'full') return 6 * matmulParams(arch) + attention;
  return 4 * matmulParams(arch) + attention + 6 * spec.loraR * adapterDims(arch, spec.targets);
}

/**
 * The sequence length whose causal attention costs per token what the packed documents of
 * cuSeqlens cost on average: a document of n tokens costs ∝ n per token, so Σ n² / Σ n.
 */
export function attentionSpan(cuSeqlens: ArrayLike<number>): number {
  let tokens = 0;
  let squares = 0;
  for (let i = 1; i < cuSeqlens.length; i++) {
    const n = cuSeqlens[i] - cuSeqlens[i - 1];
    tokens += n;
    squares += n * n;
  }
  return tokens > 0 ? squares / tokens : 0;
}

/** MFU of `flopsPerSecond` on a device (null where its peak is unknown, e.g. a CPU). */
export function modelFlopsUtilisation(flopsPerSecond: number, deviceName: string): number | null {
  const peak = peakBf16Tflops(deviceName);
  return peak === null ? null : flopsPerSecond / (peak * 1e12);
}
