/**
 * Float64 reference for rmsnormResidual (Hugging Face LlamaRMSNorm after a residual add) and its
 * backward, the latter written as reverse-mode steps through the forward's intermediates.
 */

export interface RmsnormRef {
  out: Float64Array;
  sum: Float64Array;
  rstd: Float64Array;
}

export function rmsnormRef(
  x: ArrayLike<number>,
  residual: ArrayLike<number> | null,
  weight: ArrayLike<number>,
  cols: number,
  eps: number,
): RmsnormRef {
  const rows = x.length / cols;
  const sum = Float64Array.from(x, (v, i) => v + (residual ? residual[i] : 0));
  const out = new Float64Array(x.length);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = sum.subarray(r * cols, (r + 1) * cols);
    const meanSquare = row.reduce((acc, v) => acc + v * v, 0) / cols;
    rstd[r] = 1 / Math.sqrt(meanSquare + eps);
    for (let c = 0; c < cols; c++) out[r * cols + c] = (row[c] * rstd[r]) * weight[c];
  }
  return { out, sum, rstd };
}

/** dx (of x and of residual) and dweight given dout, and dsum arriving on the `sum` output. */
export function rmsnormBackwardRef(
  dout: ArrayLike<number>,
  sum: ArrayLike<number>,
  weight: ArrayLike<number>,
  dsum: ArrayLike<number> | null,
  cols: number,
  eps: number,
): { dx: Float64Array; dweight: Float64Array } {
  const rows = sum.length / cols;
  const dx = new Float64Array(sum.length);
  const dweight = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const s = Array.from({ length: cols }, (_, c) => sum[r * cols + c]);
    const g = Array.from({ length: cols }, (_, c) => dout[r * cols + c]);
    // forward: m = mean(s²); q = 1/sqrt(m + eps); n = s·q; y = n·w
    const m = s.reduce((acc, v) => acc + v * v, 0) / cols;
    const q = (m + eps) ** -0.5;
    const n = s.map((v) => v * q);
    // backward, step by step
    const dn = g.map((v, c) => v * weight[c]);
    g.forEach((v, c) => (dweight[c] += v * n[c]));
    const dq = dn.reduce((acc, v, c) => acc + v * s[c], 0);
    const dm = dq * -0.5 * (m + eps) ** -1.5;
    for (let c = 0; c < cols; c++) {
      dx[r * cols + c] = dn[c] * q + (dm * 2 * s[c]) / cols + (dsum ? dsum[r * cols + c] : 0);
    }
  }
  return { dx, dweight };
}
