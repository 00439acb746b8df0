/**
 * Float64 reference for rotary embeddings, following transformers' LlamaRotaryEmbedding step by
 * step: inv_freq (with _compute_llama3_parameters' torch.where chain for 'llama3'), freqs = pos ×
 * inv_freq, emb = cat(freqs, freqs), out = x·cos(emb) + rotate_half(x)·sin(emb).
 */

export interface RopeRefOptions {
  theta: number;
  scaling?: { type: 'llama3' | 'linear'; factor: number; lowFreqFactor?: number; highFreqFactor?: number; originalMaxPositionEmbeddings?: number };
}

export function ropeInvFreq(dim: number, options: RopeRefOptions): Float64Array {
  const invFreq = new Float64Array(dim / 2);
  for (let k = 0; k < dim; k += 2) invFreq[k / 2] = 1 / options.theta ** (k / dim);
  const s = options.scaling;
  if (s?.type === 'linear') return invFreq.map((f) => f / s.factor);
  if (s?.type !== 'llama3') return invFreq;
  const low = s.lowFreqFactor ?? 1;
  const high = s.highFreqFactor ?? 4;
  const oldContext = s.originalMaxPositionEmbeddings ?? 8192;
  const lowFreqWavelen = oldContext / low;
  const highFreqWavelen = oldContext / high;
  return invFreq.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    const llama = wavelen > lowFreqWavelen ? f / s.factor : f;
    const smoothFactor = (oldContext / wavelen - low) / (high - low);
    const smoothed = ((1 - smoothFactor) * llama) / s.factor + smoothFactor * llama;
    const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    return isMedium ? smoothed : llama;
  });
}

/** x [T, H, D] rotated at positions [T]; `inverse` rotates by the negative angle. */
export function ropeRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  heads: number,
  dim: number,
  options: RopeRefOptions,
  inverse = false,
): Float64Array {
  const invFreq = ropeInvFreq(dim, options);
  const half = dim / 2;
  const out = new Float64Array(x.length);
  for (let t = 0; t < positions.length; t++) {
    const emb = Array.from({ length: dim }, (_, j) => positions[t] * invFreq[j % half]);
    const cos = emb.map(Math.cos);
    const sin = emb.map((a) => (inverse ? -Math.sin(a) : Math.sin(a)));
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * dim;
      const row = Array.from({ length: dim }, (_, j) => x[base + j]);
      const rotated = [...row.slice(half).map((v) => -v), ...row.slice(0, half)];
      for (let j = 0; j < dim; j++) out[base + j] = row[j] * cos[j] + rotated[j] * sin[j];
    }
  }
  return out;
}
