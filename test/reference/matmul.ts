/**
 * Float64 reference for matmul and matmulBackward, written from the definitions in lib/ops.ts with
 * plain index arithmetic (no blocking, no shared code with the native side):
 *   c[..., i, j] = alpha · Σ_k op(a)[..., i, k] · op(b)[..., k, j] + bias[j]
 * where op(a) = aᵀ over the last two dims when transA (likewise b), and a 2-D b serves every batch.
 */

export interface MatmulRefOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
}

export interface MatmulGeometry {
  batch: number;
  M: number;
  N: number;
  K: number;
  sharedB: boolean;
  outShape: number[];
}

export function matmulGeometry(aShape: readonly number[], bShape: readonly number[], options: MatmulRefOptions = {}): MatmulGeometry {
  const lead = aShape.slice(0, -2);
  const [a0, a1] = aShape.slice(-2);
  const [b0, b1] = bShape.slice(-2);
  const M = options.transA ? a1 : a0;
  const K = options.transA ? a0 : a1;
  const N = options.transB ? b0 : b1;
  const batch = lead.reduce((x, y) => x * y, 1);
  return { batch, M, N, K, sharedB: bShape.length === 2, outShape: [...lead, M, N] };
}

/**
 * Strides into the stored a and b: op(a)[n, i, k] is a[n·aBatch + i·ai + k·ak] and op(b)[n, k, j]
 * is b[n·bBatch + k·bk + j·bj].
 */
function strides(g: MatmulGeometry, options: MatmulRefOptions) {
  const { M, N, K } = g;
  return {
    aBatch: M * K,
    ai: options.transA ? 1 : K,
    ak: options.transA ? M : 1,
    bBatch: g.sharedB ? 0 : K * N,
    bk: options.transB ? 1 : N,
    bj: options.transB ? K : 1,
  };
}

export function matmulRef(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  options: MatmulRefOptions & { bias?: ArrayLike<number> } = {},
): Float64Array {
  const g = matmulGeometry(aShape, bShape, options);
  const s = strides(g, options);
  const alpha = options.alpha ?? 1;
  const out = new Float64Array(g.batch * g.M * g.N);
  for (let n = 0; n < g.batch; n++) {
    for (let i = 0; i < g.M; i++) {
      for (let j = 0; j < g.N; j++) {
        const a0 = n * s.aBatch + i * s.ai;
        const b0 = n * s.bBatch + j * s.bj;
        let acc = 0;
        for (let k = 0; k < g.K; k++) acc += a[a0 + k * s.ak] * b[b0 + k * s.bk];
        out[(n * g.M + i) * g.N + j] = alpha * acc + (options.bias ? options.bias[j] : 0);
      }
    }
  }
  return out;
}

export interface MatmulGradsRef {
  da: Float64Array;
  db: Float64Array;
  dbias: Float64Array;
}

/** dL/da, dL/db, dL/dbias for L = Σ dc · c, by the chain rule applied element by element. */
export function matmulBackwardRef(
  dc: ArrayLike<number>,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  options: MatmulRefOptions = {},
): MatmulGradsRef {
  const g = matmulGeometry(aShape, bShape, options);
  const s = strides(g, options);
  const alpha = options.alpha ?? 1;
  const da = new Float64Array(a.length);
  const db = new Float64Array(b.length);
  const dbias = new Float64Array(g.N);
  for (let n = 0; n < g.batch; n++) {
    for (let i = 0; i < g.M; i++) {
      for (let j = 0; j < g.N; j++) {
        const d = dc[(n * g.M + i) * g.N + j];
        dbias[j] += d;
        const a0 = n * s.aBatch + i * s.ai;
        const b0 = n * s.bBatch + j * s.bj;
        for (let k = 0; k < g.K; k++) {
          da[a0 + k * s.ak] += alpha * d * b[b0 + k * s.bk];
          db[b0 + k * s.bk] += alpha * d * a[a0 + k * s.ak];
        }
      }
    }
  }
  return { da, db, dbias };
}
