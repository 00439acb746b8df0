/** Random tiny LLaMA/Qwen2 weights and packed batches for model tests (host arrays + tensors). */
import type { HostRng } from '../../lib/rng';
import { LlamaArch } from '../../lib/model/llama';
import { DeviceBatch } from '../../lib/model/llama';
import { DType, tensor, Tensor } from '../../lib/tensor';

export function tinyArch(overrides: Partial<LlamaArch> = {}): LlamaArch {
  return {
    vocabSize: 13,
    hiddenSize: 8,
    intermediateSize: 12,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 2,
    rmsNormEps: 1e-5,
    rope: { theta: 10000 },
    tieWordEmbeddings: false,
    attentionBias: false,
    ...overrides,
  };
}

/** Hugging Face names and shapes of a checkpoint for arch. */
export function weightShapes(arch: LlamaArch): Map<string, number[]> {
  const C = arch.hiddenSize;
  const q = arch.numHeads * arch.headDim;
  const kv = arch.numKvHeads * arch.headDim;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [arch.vocabSize, C]], ['model.norm.weight', [C]]]);
  if (!arch.tieWordEmbeddings) shapes.set('lm_head.weight', [arch.vocabSize, C]);
  for (let l = 0; l < arch.numLayers; l++) {
    const p = `model.layers.${l}`;
    shapes.set(`${p}.input_layernorm.weight`, [C]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [C]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [q, C]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [kv, C]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [kv, C]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [C, q]);
    if (arch.attentionBias) {
      shapes.set(`${p}.self_attn.q_proj.bias`, [q]);
      shapes.set(`${p}.self_attn.k_proj.bias`, [kv]);
      shapes.set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    shapes.set(`${p}.mlp.gate_proj.weight`, [arch.intermediateSize, C]);
    shapes.set(`${p}.mlp.up_proj.weight`, [arch.intermediateSize, C]);
    shapes.set(`${p}.mlp.down_proj.weight`, [C, arch.intermediateSize]);
  }
  return shapes;
}

/** Random host weights: norms near 1, matrices N(0, 0.5) so the tiny model is far from linear. */
export function randomHostWeights(arch: LlamaArch, rng: HostRng): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const [name, shape] of weightShapes(arch)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNorm = name.endsWith('norm.weight');
    out.set(name, Float64Array.from({ length: n }, () => (isNorm ? 1 + 0.2 * rng.normal() : 0.5 * rng.normal())));
  }
  return out;
}

export function toTensors(host: Map<string, Float64Array>, shapes: Map<string, number[]>, dtype: DType): Map<string, Tensor> {
  return new Map([...host].map(([name, data]) => [name, tensor(data, shapes.get(name)!, { dtype })]));
}

export interface HostBatch {
  inputIds: Int32Array;
  labels: Int32Array;
  positionIds: Int32Array;
  cuSeqlens: Int32Array;
}

/** Documents of the given lengths packed into one row, labels = next token, -100 at document ends. */
export function packedBatch(rng: HostRng, vocab: number, lengths: number[]): HostBatch {
  const T = lengths.reduce((a, b) => a + b, 0);
  const inputIds = Int32Array.from({ length: T }, () => rng.int(vocab));
  const labels = new Int32Array(T).fill(-100);
  const positionIds = new Int32Array(T);
  const cuSeqlens = new Int32Array(lengths.length + 1);
  let start = 0;
  lengths.forEach((len, d) => {
    cuSeqlens[d] = start;
    for (let i = 0; i < len; i++) {
      positionIds[start + i] = i;
      if (i + 1 < len) labels[start + i] = inputIds[start + i + 1];
    }
    start += len;
  });
  cuSeqlens[lengths.length] = T;
  return { inputIds, labels, positionIds, cuSeqlens };
}

export function deviceBatch(b: HostBatch, device = 'cpu'): DeviceBatch {
  const T = b.inputIds.length;
  return {
    inputIds: tensor(b.inputIds, [T], { dtype: 'i32', device }),
    labels: tensor(b.labels, [T], { dtype: 'i32', device }),
    positionIds: tensor(b.positionIds, [T], { dtype: 'i32', device }),
    cuSeqlens: tensor(b.cuSeqlens, [b.cuSeqlens.length], { dtype: 'i32', device }),
  };
}
