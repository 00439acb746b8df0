/** Float64 reference for SwiGLU: silu(gate)·up and its gradients. */

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

export function swigluRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from(gate, (g, i) => g * sigmoid(g) * up[i]);
}

export function swigluBackwardRef(
  dout: ArrayLike<number>,
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
): { dgate: Float64Array; dup: Float64Array } {
  // silu'(g) = σ(g) + g·σ(g)·(1 - σ(g))
  const dgate = Float64Array.from(gate, (g, i) => {
    const s = sigmoid(g);
    return dout[i] * up[i] * (s + g * s * (1 - s));
  });
  const dup = Float64Array.from(gate, (g, i) => dout[i] * g * sigmoid(g));
  return { dgate, dup };
}
