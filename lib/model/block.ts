/**
 * One LLaMA decoder block as a forward/backward pair (llm.c style), with the residual add fused
 * into each RMSNorm: the block takes the previous block's output `x` and the residual stream
 * `residual`, and returns its own output `delta` and the stream `sum` (before adding delta).
 *
 *   s1 = residual + x;  h1 = rmsnorm(s1)·w_in
 *   q, k, v = h1·Wqᵀ, h1·Wkᵀ, h1·Wvᵀ      [T, H, D], [T, Hkv, D]
 *   a = attention(rope(q), rope(k), v)     causal, per packed document
 *   s2 = s1 + a·Woᵀ;    h2 = rmsnorm(s2)·w_post
 *   delta = (silu(h2·Wgᵀ) ∘ h2·Wuᵀ)·Wdᵀ
 *
 * The next consumer adds delta to s2, so one gradient G flows back for both.
 */
import {
  addInplace,
  attention,
  AttentionResult,
  attentionBackward,
  kvCacheWrite,
  rmsnormResidual,
  rmsnormResidualBackward,
  RmsnormResult,
  rope,
  ropeBackward,
  RopeOptions,
  swiglu,
  swigluBackward,
} from '../ops';
import { Tensor } from '../tensor';
import { DrawSource, linearBackward, LinearCache, linearForward, LinearGrads, LinearParams } from './linear';

export interface BlockParams {
  inputNorm: Tensor;
  q: LinearParams;
  k: LinearParams;
  v: LinearParams;
  o: LinearParams;
  postNorm: Tensor;
  gate: LinearParams;
  up: LinearParams;
  down: LinearParams;
  /** full fine-tuning: the norm weights receive gradients */
  trainNorms: boolean;
}

export const linearNames = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LinearName = (typeof linearNames)[number];

export interface BlockDims {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  rope: RopeOptions;
}

/** The packed batch's layout, on the model's device. */
export interface PackedContext {
  positionIds: Tensor;
  cuSeqlens: Tensor;
  /** the host checked the batch's ids, labels and cuSeqlens (lib/train/batches.ts toDevice) */
  indicesChecked?: boolean;
}

/** Inference only: the layer's KV cache and where the new tokens go. */
export interface CacheContext {
  k: Tensor;
  v: Tensor;
  /** int32 [B]: cache position of each sequence's first new token */
  offsets: Tensor;
  /** int32 [B]: valid keys per sequence after writing the new tokens */
  kvLens: Tensor;
}

export interface BlockCache {
  n1: RmsnormResult;
  q: LinearCache;
  k: LinearCache;
  v: LinearCache;
  qr: Tensor;
  kr: Tensor;
  vt: Tensor;
  att: AttentionResult;
  o: LinearCache;
  n2: RmsnormResult;
  gate: LinearCache;
  up: LinearCache;
  g: Tensor;
  u: Tensor;
  down: LinearCache;
}

export type GradSink = (name: string, grad: Tensor) => void;

export function blockForward(
  p: BlockParams,
  dims: BlockDims,
  x: Tensor,
  residual: Tensor | undefined,
  ctx: PackedContext,
  draws: DrawSource,
  kv?: CacheContext,
): { delta: Tensor; sum: Tensor; cache: BlockCache } {
  const T = x.shape[0];
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = dims;
  const n1 = rmsnormResidual(x, p.inputNorm, { eps: dims.rmsNormEps, residual });
  const q = linearForward(p.q, n1.out, draws);
  const k = linearForward(p.k, n1.out, draws);
  const v = linearForward(p.v, n1.out, draws);
  const qr = rope(q.y.reshape([T, H, D]), ctx.positionIds, dims.rope);
  const kr = rope(k.y.reshape([T, Hkv, D]), ctx.positionIds, dims.rope);
  const vt = v.y.reshape([T, Hkv, D]);
  let att: AttentionResult;
  if (kv) {
    kvCacheWrite(kv.k, kr, ctx.cuSeqlens, kv.offsets);
    kvCacheWrite(kv.v, vt, ctx.cuSeqlens, kv.offsets);
    att = attention(qr, kv.k, kv.v, { cuSeqlens: ctx.cuSeqlens, qOffset: kv.offsets, kvLens: kv.kvLens, causal: true });
  } else {
    att = attention(qr, kr, vt, { cuSeqlens: ctx.cuSeqlens, causal: true, indicesChecked: ctx.indicesChecked });
  }
  const o = linearForward(p.o, att.out.reshape([T, H * D]), draws);
  const n2 = rmsnormResidual(o.y, p.postNorm, { eps: dims.rmsNormEps, residual: n1.sum });
  const gate = linearForward(p.gate, n2.out, draws);
  const up = linearForward(p.up, n2.out, draws);
  const act = swiglu(gate.y, up.y);
  const down = linearForward(p.down, act, draws);
  return {
    delta: down.y,
    sum: n2.sum,
    cache: {
      n1,
      q: q.cache,
      k: k.cache,
      v: v.cache,
      qr,
      kr,
      vt,
      att,
      o: o.cache,
      n2,
      gate: gate.cache,
      up: up.cache,
      g: gate.y,
      u: up.y,
      down: down.cache,
    },
  };
}

function emitLinear(sink: GradSink, prefix: string, grads: LinearGrads): void {
  if (grads.weight) sink(`${prefix}.weight`, grads.weight);
  if (grads.bias) sink(`${prefix}.bias`, grads.bias);
  if (grads.loraA) sink(`${prefix}.lora_A`, grads.loraA);
  if (grads.loraB) sink(`${prefix}.lora_B`, grads.loraB);
}

/**
 * G: the gradient of the block's delta (and of its sum: the same tensor). Returns the gradient of
 * x and residual (again one tensor). Parameter gradients go to sink under `${prefix}.<name>`.
 */
export function blockBackward(
  p: BlockParams,
  dims: BlockDims,
  c: BlockCache,
  G: Tensor,
  ctx: PackedContext,
  prefix: string,
  sink: GradSink,
): Tensor {
  const T = G.shape[0];
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = dims;
  const attn = `${prefix}.self_attn`;
  const mlp = `${prefix}.mlp`;

  const down = linearBackward(p.down, c.down, G, true);
  emitLinear(sink, `${mlp}.down_proj`, down.grads);
  const { dgate, dup } = swigluBackward(down.dx!, c.g, c.u);
  const gate = linearBackward(p.gate, c.gate, dgate, true);
  const up = linearBackward(p.up, c.up, dup, true);
  emitLinear(sink, `${mlp}.gate_proj`, gate.grads);
  emitLinear(sink, `${mlp}.up_proj`, up.grads);
  const dh2 = gate.dx!;
  addInplace(dh2, up.dx!);

  const n2 = rmsnormResidualBackward(dh2, c.n2, p.postNorm, { dsum: G, needWeight: p.trainNorms });
  if (n2.dweight) sink(`${prefix}.post_attention_layernorm.weight`, n2.dweight);

  const o = linearBackward(p.o, c.o, n2.dx, true);
  emitLinear(sink, `${attn}.o_proj`, o.grads);
  const { dq, dk, dv } = attentionBackward(o.dx!.reshape([T, H, D]), c.qr, c.kr, c.vt, c.att, {
    cuSeqlens: ctx.cuSeqlens,
    causal: true,
    indicesChecked: ctx.indicesChecked,
  });
  const dqRaw = ropeBackward(dq, ctx.positionIds, dims.rope).reshape([T, H * D]);
  const dkRaw = ropeBackward(dk, ctx.positionIds, dims.rope).reshape([T, Hkv * D]);
  const q = linearBackward(p.q, c.q, dqRaw, true);
  const k = linearBackward(p.k, c.k, dkRaw, true);
  const v = linearBackward(p.v, c.v, dv.reshape([T, Hkv * D]), true);
  emitLinear(sink, `${attn}.q_proj`, q.grads);
  emitLinear(sink, `${attn}.k_proj`, k.grads);
  emitLinear(sink, `${attn}.v_proj`, v.grads);
  const dh1 = q.dx!;
  addInplace(dh1, k.dx!);
  addInplace(dh1, v.dx!);

  const n1 = rmsnormResidualBackward(dh1, c.n1, p.inputNorm, { dsum: n2.dx, needWeight: p.trainNorms });
  if (n1.dweight) sink(`${prefix}.input_layernorm.weight`, n1.dweight);
  return n1.dx;
}
