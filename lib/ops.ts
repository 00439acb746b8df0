/**
 * The op interface: every computation the model, trainer and generator run, as typed functions
 * over Tensors. Each op is declared once, in native/ops/<op>.cpp (its inputs, attributes with their
 * types and defaults, and outputs: `opSchemas()`); the native side rejects an attribute the op does
 * not declare. Each op has a CPU implementation (native/ops, native/cpu) and a CUDA one (kernels/)
 * when the addon was built with CUDA; `opSupport()` tells which. test/parity runs every op on every
 * available device against the CPU. Attributes left undefined take the schema's default.
 *
 * Conventions (Hugging Face and FlashAttention):
 * - weights are [out, in]; activations are [tokens, features] over packed rows (T = tokens);
 * - packed documents are described by `cuSeqlens`, int32 [B+1], the start of each document over
 *   the flattened tokens plus the total, and `positionIds`, int32 [T], restarting at 0 per document;
 * - q is [T, H, D], k and v are [T, Hkv, D] (H a multiple of Hkv: grouped-query attention);
 * - the KV cache of a layer is [B, Hkv, maxTokens, D] with per-sequence valid lengths `kvLens`;
 * - int32 labels use -100 (ignoreIndex) for positions without loss; labels are already aligned with
 *   the logits of the same row (the data pipeline shifts them);
 * - forward ops return what their backward needs (lse, rstd, xa...), and each backward returns
 *   fresh gradients (accumulate with addInplace).
 * Floating-point ops compute in f32 (f64 for f64 tensors, used by gradient checks) and store in
 * their input dtype; reductions run in a fixed order whatever the thread count.
 */
import { SeqtuneError } from './errors';
import { Attrs, native, NativeOpSchema, NativeTensor } from './native';
import { DType, Tensor } from './tensor';

function run(name: string, inputs: Array<Tensor | null | undefined>, attrs: Attrs = {}): Tensor[] {
  inputs.forEach((t, i) => {
    if (t !== null && t !== undefined && !(t instanceof Tensor)) {
      const got = typeof t === 'object' ? `a ${(t as object).constructor?.name ?? 'object'}` : `${typeof t} ${JSON.stringify(t)}`;
      throw new SeqtuneError(`${name}: input ${i + 1} must be a Tensor, got ${got}`, 'ERR_ARGUMENT');
    }
  });
  const handles: Array<NativeTensor | null> = inputs.map((t) => (t ? t.handle : null));
  return native()
    .runOp(name, handles, attrs)
    .map((h) => new Tensor(h));
}

let schemas: Map<string, NativeOpSchema> | undefined;

/** Every op's declaration, from the native registry. */
export function opSchemas(): Map<string, NativeOpSchema> {
  schemas ??= new Map(native().listOps().map((op) => [op.name, op]));
  return schemas;
}

/** run() with the outputs named by the op's schema (those not computed are absent). */
function runNamed(name: string, inputs: Array<Tensor | null | undefined>, attrs: Attrs = {}): Record<string, Tensor> {
  const outputs = run(name, inputs, attrs);
  const schema = opSchemas().get(name)!;
  const named: Record<string, Tensor> = {};
  let i = 0;
  for (const output of schema.outputs) {
    if (output.when && !(attrs[output.when] ?? schema.attrs.find((a) => a.name === output.when)!.default)) continue;
    named[output.name] = outputs[i++];
  }
  return named;
}

// ---- elementwise ------------------------------------------------------------------------------

/** a + alpha * b (same shape and dtype). */
export function add(a: Tensor, b: Tensor, alpha?: number): Tensor {
  return run('add', [a, b], { alpha })[0];
}

/** a * b elementwise. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return run('mul', [a, b])[0];
}

/** alpha * a. */
export function scale(a: Tensor, alpha: number): Tensor {
  return run('scale', [a], { alpha })[0];
}

/** a += alpha * b, in place (b may have another floating dtype). */
export function addInplace(a: Tensor, b: Tensor, alpha?: number): void {
  run('addInplace', [a, b], { alpha });
}

/** a converted to dtype (bf16/f16 rounded to nearest even). */
export function cast(a: Tensor, dtype: DType): Tensor {
  return run('cast', [a], { dtype })[0];
}

/** dst = src converted to dst's dtype, in place (same shape). */
export function copyInto(dst: Tensor, src: Tensor): void {
  run('copyInto', [dst, src]);
}

/** Sum of all elements, [1] (f64 for f64 input, else f32). */
export function sum(a: Tensor): Tensor {
  return run('sum', [a])[0];
}

// ---- matmul -----------------------------------------------------------------------------------

export interface MatmulOptions {
  /** use aᵀ: a is [..., K, M] */
  transA?: boolean;
  /** use bᵀ: b is [..., N, K] (a linear layer's weight [out, in]) */
  transB?: boolean;
  /** [N], added to every row */
  bias?: Tensor;
  /** scales the product (not the bias) */
  alpha?: number;
}

/**
 * c = alpha · op(a) · op(b) + bias. a is [..., M, K], b is [..., K, N] with the same batch dims,
 * or b is 2-D and shared by every batch (a's leading dims are then folded into M). c: [..., M, N].
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  return run('matmul', [a, b, options.bias], { transA: options.transA, transB: options.transB, alpha: options.alpha })[0];
}

export interface MatmulGrads {
  da?: Tensor;
  db?: Tensor;
  dbias?: Tensor;
}

/** Gradients of matmul given dc; `need` picks which are computed (all by default). */
export function matmulBackward(
  dc: Tensor,
  a: Tensor,
  b: Tensor,
  options: MatmulOptions & { needA?: boolean; needB?: boolean; needBias?: boolean } = {},
): MatmulGrads {
  return runNamed('matmulBackward', [dc, a, b], {
    transA: options.transA,
    transB: options.transB,
    alpha: options.alpha,
    needA: options.needA,
    needB: options.needB,
    needBias: options.needBias ?? options.bias !== undefined,
  });
}

// ---- attention --------------------------------------------------------------------------------

export interface AttentionOptions extends IndexCheckOptions {
  /** int32 [B+1]: document starts over the query tokens (and over k/v in the packed layout) */
  cuSeqlens: Tensor;
  /** mask keys after the query's position (default true) */
  causal?: boolean;
  /** softmax scale (default 1/sqrt(D)) */
  scale?: number;
  /** cache layout only: int32 [B], the cache position of each sequence's first query */
  qOffset?: Tensor;
  /** cache layout only: int32 [B], valid keys per sequence */
  kvLens?: Tensor;
}

export interface AttentionResult {
  /** [T, H, D] */
  out: Tensor;
  /** f32 [H, T] (f64 for f64 q): log-sum-exp of each query's scaled scores, for the backward */
  lse: Tensor;
}

/**
 * Scaled-dot-product attention over packed documents, tiled with an online softmax (no T×T
 * buffer). Packed layout: k, v [T, Hkv, D] share q's cuSeqlens and tokens never attend across
 * documents. Cache layout (decoding): k, v are a layer's KV cache [B, Hkv, maxTokens, D]; query i
 * of sequence b sits at position qOffset[b] + i and sees keys [0, kvLens[b]) (causal: up to its
 * own position).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): AttentionResult {
  const { out, lse } = runNamed('attention', [q, k, v, options.cuSeqlens, options.qOffset, options.kvLens], {
    causal: options.causal,
    scale: options.scale,
    indicesChecked: options.indicesChecked,
  });
  return { out, lse };
}

/**
 * Gradients of attention (packed layout) without materialising the attention matrix.
 * deterministic (default true): on CUDA, dQ is summed in a fixed order by a second pass over query
 * blocks; false adds key blocks' dQ contributions with atomics in one pass (faster, not bitwise
 * reproducible). The CPU is always deterministic.
 */
export function attentionBackward(
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  forward: AttentionResult,
  options: AttentionOptions & { deterministic?: boolean },
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const { dq, dk, dv } = runNamed('attentionBackward', [dout, q, k, v, forward.out, forward.lse, options.cuSeqlens], {
    causal: options.causal,
    scale: options.scale,
    deterministic: options.deterministic,
    indicesChecked: options.indicesChecked,
  });
  return { dq, dk, dv };
}

/**
 * Writes new keys or values [T, Hkv, D] (packed by cuSeqlens, B sequences) into a layer's cache
 * [B, Hkv, maxTokens, D] at positions offsets[b] + i, in place.
 */
export function kvCacheWrite(cache: Tensor, values: Tensor, cuSeqlens: Tensor, offsets: Tensor): void {
  run('kvCacheWrite', [cache, values, cuSeqlens, offsets]);
}

// ---- normalisation, position, activation ------------------------------------------------------

export interface RmsnormResult {
  /** normalised and scaled output, x's shape */
  out: Tensor;
  /** x + residual (x itself when no residual): the residual stream after this add */
  sum: Tensor;
  /** f32 [rows] (f64 for f64 input): 1/sqrt(mean(sum²) + eps) */
  rstd: Tensor;
}

/** sum = x + residual; out = sum / rms(sum) · weight over the last dim (residual optional). */
export function rmsnormResidual(x: Tensor, weight: Tensor, options: { eps: number; residual?: Tensor }): RmsnormResult {
  const { out, sum, rstd } = runNamed('rmsnormResidual', [x, options.residual, weight], { eps: options.eps });
  return { out, sum, rstd };
}

/**
 * Backward of rmsnormResidual. dsum is the gradient arriving on the `sum` output (the residual
 * stream), added to the result; dx is the gradient of both x and residual.
 */
export function rmsnormResidualBackward(
  dout: Tensor,
  forward: RmsnormResult,
  weight: Tensor,
  options: { dsum?: Tensor; needWeight?: boolean } = {},
): { dx: Tensor; dweight?: Tensor } {
  const { dx, dweight } = runNamed('rmsnormResidualBackward', [dout, forward.sum, weight, forward.rstd, options.dsum], {
    needWeight: options.needWeight,
  });
  return dweight ? { dx, dweight } : { dx };
}

export interface RopeOptions {
  /** rope_theta */
  theta: number;
  /** Hugging Face rope_scaling; only `llama3` and `linear` change the frequencies */
  scaling?: {
    type: 'llama3' | 'linear';
    factor: number;
    lowFreqFactor?: number;
    highFreqFactor?: number;
    originalMaxPositionEmbeddings?: number;
  };
}

function ropeAttrs(options: RopeOptions, inverse: boolean): Attrs {
  return {
    theta: options.theta,
    scalingType: options.scaling?.type,
    factor: options.scaling?.factor,
    lowFreqFactor: options.scaling?.lowFreqFactor,
    highFreqFactor: options.scaling?.highFreqFactor,
    originalMaxPositionEmbeddings: options.scaling?.originalMaxPositionEmbeddings,
    inverse,
  };
}

/** Rotary embedding of x [T, H, D] at positionIds (int32 [T]), HF rotate-half layout. */
export function rope(x: Tensor, positionIds: Tensor, options: RopeOptions): Tensor {
  return run('rope', [x, positionIds], ropeAttrs(options, false))[0];
}

/** Backward of rope: the rotation by the opposite angle. */
export function ropeBackward(dy: Tensor, positionIds: Tensor, options: RopeOptions): Tensor {
  return run('rope', [dy, positionIds], ropeAttrs(options, true))[0];
}

/** silu(gate) · up. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  return run('swiglu', [gate, up])[0];
}

export function swigluBackward(dout: Tensor, gate: Tensor, up: Tensor): { dgate: Tensor; dup: Tensor } {
  const { dgate, dup } = runNamed('swigluBackward', [dout, gate, up]);
  return { dgate, dup };
}

export interface DropoutOptions {
  p: number;
  /** a draw from Rng.next(): the backward regenerates the same mask from it */
  seed: number;
  offset: number;
}

/** Inverted dropout: element i is kept when Philox(seed, offset, i) > p, then scaled by 1/(1-p). */
export function dropout(x: Tensor, options: DropoutOptions): Tensor {
  return run('dropout', [x], { ...options })[0];
}

export function dropoutBackward(dy: Tensor, options: DropoutOptions): Tensor {
  return run('dropout', [dy], { ...options })[0];
}

// ---- embedding and losses ---------------------------------------------------------------------

/**
 * The ops that index memory by int32 inputs (embedding ids, labels, cuSeqlens) check them. On CUDA
 * the kernels skip a bad index and flag it, and the op waits for the stream to read the flag: one
 * host synchronisation per call. `indicesChecked: true` says the caller already checked those
 * inputs on the host (lib/train/batches.ts checkBatch): the read-back is skipped, so a training step
 * queues without waiting. The kernels still never read out of bounds; an index that was wrong after
 * all is then skipped silently instead of failing. The CPU always checks.
 */
export interface IndexCheckOptions {
  indicesChecked?: boolean;
}

/** Rows of table [V, C] at ids (int32 [T]); an id outside [0, V) fails with ERR_INDEX. */
export function embedding(ids: Tensor, table: Tensor, options: IndexCheckOptions = {}): Tensor {
  return run('embedding', [ids, table], { indicesChecked: options.indicesChecked })[0];
}

/** Scatter-add of dout [T, C] into a fresh [V, C] gradient (deterministic order). */
export function embeddingBackward(dout: Tensor, ids: Tensor, vocabSize: number, options: IndexCheckOptions = {}): Tensor {
  return run('embeddingBackward', [dout, ids], { vocabSize, indicesChecked: options.indicesChecked })[0];
}

export interface CrossEntropyOptions extends IndexCheckOptions {
  ignoreIndex?: number;
  /** 'mean' over non-ignored labels (default) or 'sum' */
  reduction?: 'mean' | 'sum';
}

/** f32 (f64 when the inputs are f64, so gradient checks can differentiate the loss itself). */
export interface LossResult {
  /** [1] */
  loss: Tensor;
  /** [T]: log-sum-exp per row, for the backward */
  lse: Tensor;
  /** [1]: number of non-ignored labels */
  count: Tensor;
}

/** Softmax cross-entropy of logits [T, V] against labels (int32 [T]). */
export function crossEntropy(logits: Tensor, labels: Tensor, options: CrossEntropyOptions = {}): LossResult {
  const { loss, lse, count } = runNamed('crossEntropy', [logits, labels], {
    ignoreIndex: options.ignoreIndex,
    reduction: options.reduction,
    indicesChecked: options.indicesChecked,
  });
  return { loss, lse, count };
}

/** dlogits, scaled by gradScale (the gradient arriving on the loss). */
export function crossEntropyBackward(
  logits: Tensor,
  labels: Tensor,
  forward: LossResult,
  options: CrossEntropyOptions & { gradScale?: number } = {},
): Tensor {
  return run('crossEntropyBackward', [logits, labels, forward.lse, forward.count], {
    ignoreIndex: options.ignoreIndex,
    reduction: options.reduction,
    gradScale: options.gradScale,
    indicesChecked: options.indicesChecked,
  })[0];
}

/**
 * LM head and loss together (h and W may differ in dtype): cross-entropy of h [T, C] · Wᵀ (W [V, C]) against labels, computed
 * over vocabulary chunks so the [T, V] logits are never stored.
 */
export function linearCrossEntropy(
  h: Tensor,
  weight: Tensor,
  labels: Tensor,
  options: CrossEntropyOptions & { chunkSize?: number } = {},
): LossResult {
  const { loss, lse, count } = runNamed('linearCrossEntropy', [h, weight, labels], {
    ignoreIndex: options.ignoreIndex,
    reduction: options.reduction,
    chunkSize: options.chunkSize,
    indicesChecked: options.indicesChecked,
  });
  return { loss, lse, count };
}

/** Gradients of linearCrossEntropy: dh, and dW unless needWeight is false (a frozen head). */
export function linearCrossEntropyBackward(
  h: Tensor,
  weight: Tensor,
  labels: Tensor,
  forward: LossResult,
  options: CrossEntropyOptions & { gradScale?: number; needWeight?: boolean; chunkSize?: number } = {},
): { dh: Tensor; dweight?: Tensor } {
  const { dh, dweight } = runNamed('linearCrossEntropyBackward', [h, weight, labels, forward.lse, forward.count], {
    ignoreIndex: options.ignoreIndex,
    reduction: options.reduction,
    gradScale: options.gradScale,
    needWeight: options.needWeight,
    chunkSize: options.chunkSize,
    indicesChecked: options.indicesChecked,
  });
  return dweight ? { dh, dweight } : { dh };
}

// ---- LoRA -------------------------------------------------------------------------------------

export interface LoraOptions {
  /** alpha / r (or alpha / sqrt(r) with rsLoRA) */
  scale: number;
  bias?: Tensor;
  /** dropout on the adapter's input; its draw is needed again by the backward */
  dropout?: DropoutOptions;
}

/**
 * y = x·Wᵀ + bias + scale · (dropout(x)·Aᵀ)·Bᵀ with x [T, in], W [out, in], A [r, in], B [out, r].
 * Returns y and xa = dropout(x)·Aᵀ [T, r] for the backward. Dtypes may mix (bf16 base weights with
 * f32 adapters): y takes x's dtype, xa takes A's.
 */
export function loraLinear(x: Tensor, weight: Tensor, a: Tensor, b: Tensor, options: LoraOptions): { out: Tensor; xa: Tensor } {
  const { out, xa } = runNamed('loraLinear', [x, weight, a, b, options.bias], loraAttrs(options));
  return { out, xa };
}

function loraAttrs(options: LoraOptions): Attrs {
  return {
    scale: options.scale,
    dropoutP: options.dropout?.p,
    seed: options.dropout?.seed,
    offset: options.dropout?.offset,
  };
}

/** dx (base and adapter paths together), dA and dB; never dW (W is frozen). */
export function loraLinearBackward(
  dy: Tensor,
  x: Tensor,
  weight: Tensor,
  a: Tensor,
  b: Tensor,
  xa: Tensor,
  options: LoraOptions & { needInput?: boolean },
): { dx?: Tensor; da: Tensor; db: Tensor } {
  const { dx, da, db } = runNamed('loraLinearBackward', [dy, x, weight, a, b, xa], {
    ...loraAttrs(options),
    needInput: options.needInput,
  });
  return dx ? { dx, da, db } : { da, db };
}

// ---- optimizer --------------------------------------------------------------------------------

export interface AdamwOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number, for bias correction */
  step: number;
  /** clip: grads are scaled by min(1, maxGradNorm / (gradNorm + 1e-6)) using the gradNorm tensor */
  maxGradNorm?: number;
  gradNorm?: Tensor;
  /**
   * a float [1] tensor: when its value is not finite the call changes nothing. Checked where the
   * update runs, so a trainer can skip a bad step without reading the loss or norm back first.
   */
  skipUnlessFinite?: Tensor;
}

/**
 * One AdamW step (decoupled weight decay, as torch.optim.AdamW) over many tensors in one call,
 * updating params, m and v in place. Params, m and v are f32 (master weights); grads any float.
 */
export function adamw(params: Tensor[], grads: Tensor[], m: Tensor[], v: Tensor[], options: AdamwOptions): void {
  const n = params.length;
  if (grads.length !== n || m.length !== n || v.length !== n) {
    throw new SeqtuneError(`adamw: ${n} params but ${grads.length} grads, ${m.length} m, ${v.length} v`, 'ERR_ARGUMENT');
  }
  run('adamw', [options.gradNorm ?? null, options.skipUnlessFinite ?? null, ...params, ...grads, ...m, ...v], {
    count: n,
    lr: options.lr,
    beta1: options.beta1,
    beta2: options.beta2,
    eps: options.eps,
    weightDecay: options.weightDecay,
    step: options.step,
    maxGradNorm: options.maxGradNorm,
  });
}

/** Global L2 norm over all tensors, f32 [1]. */
export function gradNorm(tensors: Tensor[]): Tensor {
  return run('gradNorm', tensors)[0];
}

/** Scales every tensor in place by min(1, maxNorm / (norm + 1e-6)) (norm from gradNorm). */
export function clipByNorm(tensors: Tensor[], norm: Tensor, maxNorm: number): void {
  run('clipByNorm', [norm, ...tensors], { maxNorm });
}

// ---- introspection ----------------------------------------------------------------------------

/** Which ops exist and whether each has a CUDA kernel in this build. */
export function opSupport(): Map<string, { cuda: boolean }> {
  return new Map(native().listOps().map((op) => [op.name, { cuda: op.cuda }]));
}
