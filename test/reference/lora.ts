/**
 * Float64 reference for a LoRA linear layer (PEFT's lora.Linear: base + scale · B(A(dropout(x))))
 * and its gradients, written from the chain rule. The dropout mask is the shared definition in
 * ./dropout (Philox per flat element index of x).
 */
import { matmulNN, matmulNT, matmulTN } from './cross-entropy';
import { dropoutMaskRef } from './dropout';

export interface LoraDimsRef {
  tokens: number;
  in: number;
  out: number;
  rank: number;
}

export interface LoraDropoutRef {
  p: number;
  seed: number;
  offset: number;
}

/** drop(x) as a multiplier per element of x: 0 or 1/(1-p). */
export function loraDropoutScale(n: number, d: LoraDropoutRef | null): Float64Array {
  if (!d || d.p === 0) return new Float64Array(n).fill(1);
  const keep = dropoutMaskRef(n, d.p, d.seed, d.offset);
  return Float64Array.from(keep, (k) => (k ? 1 / (1 - d.p) : 0));
}

export function loraLinearRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  dims: LoraDimsRef,
  scale: number,
  dropout: LoraDropoutRef | null,
): { out: Float64Array; xa: Float64Array } {
  const { tokens, in: inF, out: outF, rank } = dims;
  const mask = loraDropoutScale(x.length, dropout);
  const xd = Float64Array.from(x, (v, i) => v * mask[i]);
  const xa = matmulNT(xd, a, tokens, rank, inF);
  const base = matmulNT(x, w, tokens, outF, inF);
  const adapter = matmulNT(xa, b, tokens, outF, rank);
  const out = base.map((v, i) => v + scale * adapter[i] + (bias ? bias[i % outF] : 0));
  return { out, xa };
}

export function loraLinearBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: LoraDimsRef,
  scale: number,
  dropout: LoraDropoutRef | null,
): { dx: Float64Array; da: Float64Array; db: Float64Array } {
  const { tokens, in: inF, out: outF, rank } = dims;
  const mask = loraDropoutScale(x.length, dropout);
  const xd = Float64Array.from(x, (v, i) => v * mask[i]);
  const xa = matmulNT(xd, a, tokens, rank, inF);
  // y = x Wᵀ + scale · xa Bᵀ  =>  dxa = scale · dy B, dB = scale · dyᵀ xa
  const dxa = matmulNN(dy, b, tokens, rank, outF).map((v) => v * scale);
  const db = matmulTN(dy, xa, outF, rank, tokens).map((v) => v * scale);
  // xa = xd Aᵀ  =>  dA = dxaᵀ xd, dxd = dxa A; xd = x ⊙ mask  =>  dx gets dxd ⊙ mask
  const da = matmulTN(dxa, xd, rank, inF, tokens);
  const dxd = matmulNN(dxa, a, tokens, inF, rank);
  const dxBase = matmulNN(dy, w, tokens, inF, outF);
  const dx = dxBase.map((v, i) => v + dxd[i] * mask[i]);
  return { dx, da, db };
}
