/**
 * A linear layer y = x·Wᵀ (+ bias), optionally with a LoRA adapter, as a forward/backward pair.
 * With an adapter the base weight is frozen and the fused loraLinear op computes both paths; in
 * full fine-tuning the weight (and bias) get gradients through matmul's backward.
 */
import {
  DropoutOptions,
  loraLinear,
  loraLinearBackward,
  matmul,
  matmulBackward,
} from '../ops';
import { Tensor } from '../tensor';

export interface LoraAdapter {
  /** [r, in], Kaiming-uniform initialised */
  a: Tensor;
  /** [out, r], zero initialised */
  b: Tensor;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA */
  scale: number;
  dropout: number;
}

export interface LinearParams {
  /** [out, in] */
  weight: Tensor;
  /** [out] */
  bias?: Tensor;
  lora?: LoraAdapter;
  /** full fine-tuning: the weight (and bias) receive gradients */
  trainable: boolean;
}

export interface LinearCache {
  x: Tensor;
  /** dropout(x)·Aᵀ, kept for the adapter's backward */
  xa?: Tensor;
  draw?: DropoutOptions;
}

export interface LinearGrads {
  weight?: Tensor;
  bias?: Tensor;
  loraA?: Tensor;
  loraB?: Tensor;
}

/** Supplies dropout draws: fresh from the RNG in a forward, replayed in a recomputation. */
export type DrawSource = (p: number) => DropoutOptions | undefined;

/** x [T, in] -> y [T, out]. */
export function linearForward(params: LinearParams, x: Tensor, draws: DrawSource): { y: Tensor; cache: LinearCache } {
  if (params.lora) {
    const draw = draws(params.lora.dropout);
    const { out, xa } = loraLinear(x, params.weight, params.lora.a, params.lora.b, {
      scale: params.lora.scale,
      bias: params.bias,
      dropout: draw,
    });
    return { y: out, cache: { x, xa, draw } };
  }
  return { y: matmul(x, params.weight, { transB: true, bias: params.bias }), cache: { x } };
}

/** Gradients for dy [T, out]: dx [T, in] when needInput, and those of the trainable parameters. */
export function linearBackward(
  params: LinearParams,
  cache: LinearCache,
  dy: Tensor,
  needInput: boolean,
): { dx?: Tensor; grads: LinearGrads } {
  if (params.lora) {
    const { dx, da, db } = loraLinearBackward(dy, cache.x, params.weight, params.lora.a, params.lora.b, cache.xa!, {
      scale: params.lora.scale,
      dropout: cache.draw,
      needInput,
    });
    return { dx, grads: { loraA: da, loraB: db } };
  }
  const { da, db, dbias } = matmulBackward(dy, cache.x, params.weight, {
    transB: true,
    needA: needInput,
    needB: params.trainable,
    needBias: params.trainable && params.bias !== undefined,
  });
  return { dx: da, grads: { weight: db, bias: dbias } };
}
