/**
 * Parity cases for matmul and matmulBackward: every transpose combination, edge-tile sizes, a
 * batched product, a 2-D weight shared by a batch (the linear-layer form) with bias and alpha, one
 * transformer-sized product with several blocks in every dimension, and bf16 products large enough
 * for the Hopper kernel on an H100 (kernels/hopper/gemm_hopper.h: M, N >= 128, M·N·K >= 2^27, rows
 * 16-byte aligned), aligned and ragged against its 128 x 256 x 64 tile, so that a GPU parity run
 * checks that kernel against the CPU through every product of the forward and backward.
 */
import { matmul, matmulBackward, type MatmulOptions } from '../../lib/ops';
import { tensor, type DType } from '../../lib/tensor';
import type { CaseFactory, OpCase } from '../helpers/op-case';
import { randomArray } from '../helpers/random';

interface Spec {
  lead: number[];
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** b is 2-D and shared by the batch */
  shared?: boolean;
  bias?: boolean;
  alpha?: number;
  /** default: f32, bf16, f16 */
  dtypes?: DType[];
}

const numel = (shape: number[]) => shape.reduce((x, y) => x * y, 1);

export const cases: CaseFactory = (rng) => {
  const out: OpCase[] = [];
  const add = (s: Spec) => {
    const aShape = [...s.lead, ...(s.transA ? [s.K, s.M] : [s.M, s.K])];
    const bShape = [...(s.shared ? [] : s.lead), ...(s.transB ? [s.N, s.K] : [s.K, s.N])];
    const cShape = [...s.lead, s.M, s.N];
    const [a, b, dc] = [aShape, bShape, cShape].map((shape) => randomArray(rng, numel(shape)));
    const bias = s.bias ? randomArray(rng, s.N) : undefined;
    const label = `[${aShape}]${s.transA ? 'ᵀ' : ''} · [${bShape}]${s.transB ? 'ᵀ' : ''}${bias ? ' + bias' : ''}`;
    // Sums of K (or M, N) products: a device summing in another order differs by ~sqrt(depth) ulps.
    const depth = Math.max(s.K, s.N, numel(s.lead) * s.M);
    const tolerance = { f32: { atol: 3e-5 * Math.sqrt(depth), rtol: 1e-4 } };
    const inputs = (device: string, dtype: DType) => {
      const on = (data: Float64Array, shape: number[]) => tensor(data, shape, { dtype, device });
      const options: MatmulOptions = { transA: s.transA, transB: s.transB, alpha: s.alpha, bias: bias && on(bias, [s.N]) };
      return { a: on(a, aShape), b: on(b, bShape), dc: on(dc, cShape), options };
    };
    out.push(
      {
        op: 'matmul',
        name: `matmul ${label}`,
        dtypes: s.dtypes ?? ['f32', 'bf16', 'f16'],
        tolerance,
        run: (device, dtype) => {
          const x = inputs(device, dtype);
          return [matmul(x.a, x.b, x.options)];
        },
      },
      {
        op: 'matmulBackward',
        name: `matmulBackward ${label}`,
        dtypes: s.dtypes ?? ['f32', 'bf16', 'f16'],
        tolerance,
        run: (device, dtype) => {
          const x = inputs(device, dtype);
          const g = matmulBackward(x.dc, x.a, x.b, x.options);
          return [g.da!, g.db!, ...(g.dbias ? [g.dbias] : [])];
        },
      },
    );
  };

  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      add({ lead: [], M: 1, N: 3, K: 17, transA, transB });
      add({ lead: [], M: 65, N: 17, K: 3, transA, transB, alpha: 0.5 });
      add({ lead: [2], M: 17, N: 33, K: 65, transA, transB, bias: true });
      add({ lead: [2, 3], M: 5, N: 40, K: 24, transA, transB, shared: true, bias: true, alpha: -1.5 });
    }
  }
  add({ lead: [], M: 300, N: 257, K: 290, transA: false, transB: true, bias: true });
  // The Hopper kernel's shapes (bf16 only: its dtypes are bf16/f16 and the CPU reference is slow).
  add({ lead: [], M: 512, N: 768, K: 1024, transA: false, transB: true, bias: true, dtypes: ['bf16'] });
  add({ lead: [], M: 520, N: 776, K: 1000, transA: false, transB: false, alpha: 0.5, dtypes: ['bf16'] });
  add({ lead: [2], M: 264, N: 392, K: 1032, transA: true, transB: false, bias: true, dtypes: ['bf16'] });
  return out;
};
