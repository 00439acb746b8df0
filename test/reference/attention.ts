/**
 * Float64 reference for attention: the naive full softmax over each query's visible keys, written
 * from the definition (no tiling, no online softmax), and its analytic gradient.
 */

export interface AttentionProblem {
  tokens: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** B + 1 document starts over the query rows (and the packed k/v rows) */
  cuSeqlens: ArrayLike<number>;
  causal: boolean;
  scale: number;
}

/** Cache layout: k, v are [B, Hkv, maxTokens, D]. */
export interface CacheLayout {
  maxTokens: number;
  qOffset: ArrayLike<number>;
  kvLens: ArrayLike<number>;
}

interface Keys {
  /** offset of key j of sequence b under kv head g in k and v */
  at(b: number, g: number, j: number): number;
  /** position of query i of sequence b */
  position(b: number, i: number): number;
  count(b: number): number;
}

function packedKeys(p: AttentionProblem): Keys {
  const cu = p.cuSeqlens;
  return {
    at: (b, g, j) => ((cu[b] + j) * p.kvHeads + g) * p.headDim,
    position: (_b, i) => i,
    count: (b) => cu[b + 1] - cu[b],
  };
}

function cacheKeys(p: AttentionProblem, c: CacheLayout): Keys {
  return {
    at: (b, g, j) => ((b * p.kvHeads + g) * c.maxTokens + j) * p.headDim,
    position: (b, i) => c.qOffset[b] + i,
    count: (b) => c.kvLens[b],
  };
}

function visible(p: AttentionProblem, keys: Keys, b: number, i: number): number {
  return p.causal ? Math.min(keys.position(b, i) + 1, keys.count(b)) : keys.count(b);
}

/** For every (document, head, query): the callback gets the query's row offset and softmax weights. */
function forEachRow(
  p: AttentionProblem,
  keys: Keys,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  fn: (b: number, h: number, g: number, token: number, probs: Float64Array, lse: number) => void,
): void {
  const { heads: H, headDim: D } = p;
  const group = H / p.kvHeads;
  for (let b = 0; b + 1 < p.cuSeqlens.length; b++) {
    for (let i = 0; i < p.cuSeqlens[b + 1] - p.cuSeqlens[b]; i++) {
      const token = p.cuSeqlens[b] + i;
      const n = visible(p, keys, b, i);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / group);
        const scores = new Float64Array(n);
        let max = -Infinity;
        for (let j = 0; j < n; j++) {
          let dot = 0;
          const kj = keys.at(b, g, j);
          for (let d = 0; d < D; d++) dot += q[(token * H + h) * D + d] * k[kj + d];
          scores[j] = dot * p.scale;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j < n; j++) sum += Math.exp(scores[j] - max);
        const lse = n === 0 ? -Infinity : max + Math.log(sum);
        for (let j = 0; j < n; j++) scores[j] = Math.exp(scores[j] - lse);
        fn(b, h, g, token, scores, lse);
      }
    }
  }
}

function forward(p: AttentionProblem, keys: Keys, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) {
  const { tokens: T, heads: H, headDim: D } = p;
  const out = new Float64Array(T * H * D);
  const lse = new Float64Array(H * T);
  forEachRow(p, keys, q, k, (b, h, g, token, probs, rowLse) => {
    lse[h * T + token] = rowLse;
    for (let j = 0; j < probs.length; j++) {
      const vj = keys.at(b, g, j);
      for (let d = 0; d < D; d++) out[(token * H + h) * D + d] += probs[j] * v[vj + d];
    }
  });
  return { out, lse };
}

/** Packed layout: q [T, H, D], k and v [T, Hkv, D]. Returns out [T, H, D] and lse [H, T]. */
export function attentionReference(p: AttentionProblem, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) {
  return forward(p, packedKeys(p), q, k, v);
}

/** Cache layout: k and v [B, Hkv, maxTokens, D]. */
export function attentionCacheReference(
  p: AttentionProblem,
  cache: CacheLayout,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
) {
  return forward(p, cacheKeys(p, cache), q, k, v);
}

/**
 * Gradients of Σ dout ∘ out (packed layout) from the softmax Jacobian:
 * dv_j += P_ij dout_i, dS_ij = P_ij (dout_i·v_j - Σ_l P_il dout_i·v_l), dq_i += scale Σ_j dS_ij k_j,
 * dk_j += scale dS_ij q_i.
 */
export function attentionBackwardReference(
  p: AttentionProblem,
  dout: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
) {
  const { heads: H, headDim: D } = p;
  const keys = packedKeys(p);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  forEachRow(p, keys, q, k, (b, h, g, token, probs) => {
    const row = (token * H + h) * D;
    const dp = new Float64Array(probs.length);
    let weighted = 0;
    for (let j = 0; j < probs.length; j++) {
      const vj = keys.at(b, g, j);
      for (let d = 0; d < D; d++) dp[j] += dout[row + d] * v[vj + d];
      weighted += probs[j] * dp[j];
    }
    for (let j = 0; j < probs.length; j++) {
      const kj = keys.at(b, g, j);
      const ds = probs[j] * (dp[j] - weighted) * p.scale;
      for (let d = 0; d < D; d++) {
        dq[row + d] += ds * k[kj + d];
        dk[kj + d] += ds * q[row + d];
        dv[kj + d] += probs[j] * dout[row + d];
      }
    }
  });
  return { dq, dk, dv };
}
