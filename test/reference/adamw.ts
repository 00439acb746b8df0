/**
 * Float64 reference for torch.optim.AdamW (single-tensor path, amsgrad off, as in
 * torch/optim/adamw.py) preceded by torch.nn.utils.clip_grad_norm_, and the global L2 norm.
 */

export interface AdamwHyperRef {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamwStateRef {
  params: Float64Array[];
  m: Float64Array[];
  v: Float64Array[];
}

export function gradNormRef(tensors: ArrayLike<number>[]): number {
  let s = 0;
  for (const t of tensors) for (let i = 0; i < t.length; i++) s += t[i] * t[i];
  return Math.sqrt(s);
}

/** clip_grad_norm_'s factor: clamp(maxNorm / (norm + 1e-6), max=1). */
export function clipFactorRef(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/**
 * One step (1-based `step`) updating `state` in place. `clip` multiplies the gradients first
 * (1 without clipping).
 */
export function adamwStepRef(state: AdamwStateRef, grads: ArrayLike<number>[], hp: AdamwHyperRef, step: number, clip: number): void {
  const biasCorrection1 = 1 - hp.beta1 ** step;
  const biasCorrection2 = 1 - hp.beta2 ** step;
  const stepSize = hp.lr / biasCorrection1;
  for (let k = 0; k < state.params.length; k++) {
    const p = state.params[k];
    const m = state.m[k];
    const v = state.v[k];
    for (let i = 0; i < p.length; i++) {
      const g = grads[k][i] * clip;
      p[i] *= 1 - hp.lr * hp.weightDecay;
      m[i] += (g - m[i]) * (1 - hp.beta1); // exp_avg.lerp_(grad, 1 - beta1)
      v[i] = v[i] * hp.beta2 + (1 - hp.beta2) * g * g;
      const denom = Math.sqrt(v[i]) / Math.sqrt(biasCorrection2) + hp.eps;
      p[i] -= (stepSize * m[i]) / denom;
    }
  }
}
