/**
 * Float64 reference for softmax cross-entropy (torch.nn.functional.cross_entropy with
 * ignore_index and reduction 'mean' | 'sum') and its gradient, plus the products the fused
 * linear + cross-entropy op is checked against: logits = h · Wᵀ, dh = dlogits · W,
 * dW = dlogitsᵀ · h.
 */
import { matmulRef } from './matmul';

export interface CrossEntropyRef {
  loss: number;
  lse: Float64Array;
  count: number;
}

export interface LossOptionsRef {
  ignoreIndex: number;
  reduction: 'mean' | 'sum';
}

export function crossEntropyRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  vocab: number,
  o: LossOptionsRef,
): CrossEntropyRef {
  const rows = labels.length;
  const lse = new Float64Array(rows);
  let total = 0;
  let count = 0;
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) max = Math.max(max, logits[r * vocab + j]);
    let s = 0;
    for (let j = 0; j < vocab; j++) s += Math.exp(logits[r * vocab + j] - max);
    lse[r] = max + Math.log(s);
    if (labels[r] === o.ignoreIndex) continue;
    total += lse[r] - logits[r * vocab + labels[r]];
    count++;
  }
  const loss = o.reduction === 'sum' ? total : count > 0 ? total / count : 0;
  return { loss, lse, count };
}

/** d(gradScale · loss) / dlogits. */
export function crossEntropyBackwardRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  vocab: number,
  o: LossOptionsRef,
  gradScale: number,
): Float64Array {
  const { lse, count } = crossEntropyRef(logits, labels, vocab, o);
  const coef = o.reduction === 'sum' ? gradScale : count > 0 ? gradScale / count : 0;
  const d = new Float64Array(logits.length);
  for (let r = 0; r < labels.length; r++) {
    if (labels[r] === o.ignoreIndex) continue;
    for (let j = 0; j < vocab; j++) {
      const softmax = Math.exp(logits[r * vocab + j] - lse[r]);
      d[r * vocab + j] = coef * (softmax - (j === labels[r] ? 1 : 0));
    }
  }
  return d;
}

// 2-D products for the fused references (linearCrossEntropy here, LoRA), over matmulRef with the
// layouts named: NT is a [m, k] · bᵀ with b [n, k]; NN is a [m, k] · b [k, n]; TN is aᵀ · b with
// a [k, m] and b [k, n].
type Mat = ArrayLike<number>;
export const matmulNT = (a: Mat, b: Mat, m: number, n: number, k: number) => matmulRef(a, [m, k], b, [n, k], { transB: true });
export const matmulNN = (a: Mat, b: Mat, m: number, n: number, k: number) => matmulRef(a, [m, k], b, [k, n]);
export const matmulTN = (a: Mat, b: Mat, m: number, n: number, k: number) => matmulRef(a, [k, m], b, [k, n], { transA: true });

/** linearCrossEntropy's reference: the logits materialised, then crossEntropyRef. */
export function linearCrossEntropyRef(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  labels: ArrayLike<number>,
  features: number,
  vocab: number,
  o: LossOptionsRef,
): CrossEntropyRef {
  return crossEntropyRef(matmulNT(h, w, labels.length, vocab, features), labels, vocab, o);
}

export function linearCrossEntropyBackwardRef(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  labels: ArrayLike<number>,
  features: number,
  vocab: number,
  o: LossOptionsRef,
  gradScale: number,
): { dh: Float64Array; dw: Float64Array } {
  const rows = labels.length;
  const dlogits = crossEntropyBackwardRef(matmulNT(h, w, rows, vocab, features), labels, vocab, o, gradScale);
  return { dh: matmulNN(dlogits, w, rows, features, vocab), dw: matmulTN(dlogits, h, vocab, features, rows) };
}
