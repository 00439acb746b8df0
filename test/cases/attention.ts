/**
 * Parity cases for attention, attentionBackward and kvCacheWrite: packed documents of uneven
 * lengths (causal with grouped-query heads, and full), the KV-cache layout as in decoding, and
 * several blocks of queries and keys. The backward case takes out and lse from the float64
 * reference so it runs on a device even where the forward is missing.
 */
import { attention, attentionBackward, kvCacheWrite } from '../../lib/ops';
import { DType, tensor } from '../../lib/tensor';
import type { CaseFactory, OpCase } from '../helpers/op-case';
import { randomArray } from '../helpers/random';
import { attentionReference } from '../reference/attention';

interface Packed {
  lens: number[];
  heads: number;
  kvHeads: number;
  headDim: number;
  causal: boolean;
}

const starts = (lens: number[]) => lens.reduce((cu, n) => [...cu, cu[cu.length - 1] + n], [0]);
const i32 = (values: number[], device: string) => tensor(Int32Array.from(values), [values.length], { device });

export const cases: CaseFactory = (rng) => {
  const out: OpCase[] = [];
  const on = (device: string, dtype: DType) => (data: Float64Array, shape: number[]) => tensor(data, shape, { dtype, device });

  const packed: Packed[] = [
    { lens: [30, 1, 46], heads: 8, kvHeads: 2, headDim: 64, causal: true },
    { lens: [17, 23], heads: 4, kvHeads: 4, headDim: 128, causal: false },
    { lens: [200], heads: 4, kvHeads: 1, headDim: 64, causal: true },
    // head dims of the tiny (16), demo (24) and small (32) models: the SIMT kernels on CUDA
    { lens: [5, 0, 33], heads: 4, kvHeads: 2, headDim: 24, causal: true },
    { lens: [12, 1], heads: 2, kvHeads: 1, headDim: 16, causal: false },
    { lens: [70], heads: 4, kvHeads: 4, headDim: 32, causal: true },
  ];
  for (const s of packed) {
    const cu = starts(s.lens);
    const T = cu[cu.length - 1];
    const [shapeQ, shapeK] = [[T, s.heads, s.headDim], [T, s.kvHeads, s.headDim]];
    const [q, k, v, dout] = [shapeQ, shapeK, shapeK, shapeQ].map((shape) => randomArray(rng, shape[0] * shape[1] * shape[2]));
    const label = `docs [${s.lens}] H=${s.heads} Hkv=${s.kvHeads} D=${s.headDim} ${s.causal ? 'causal' : 'full'}`;
    const scale = 1 / Math.sqrt(s.headDim);
    out.push({
      op: 'attention',
      name: `attention ${label}`,
      run: (device, dtype) => {
        const f = on(device, dtype);
        // the causal cases as the model passes a host-checked batch (no device-side read-back)
        const r = attention(f(q, shapeQ), f(k, shapeK), f(v, shapeK), { cuSeqlens: i32(cu, device), causal: s.causal, indicesChecked: s.causal });
        return [r.out, r.lse];
      },
    });
    const problem = { tokens: T, heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim, cuSeqlens: cu, causal: s.causal, scale };
    const ref = attentionReference(problem, q, k, v);
    for (const deterministic of [true, false]) {
      out.push({
        op: 'attentionBackward',
        name: `attentionBackward ${label}${deterministic ? '' : ' (atomic dQ)'}`,
        // dk and dv sum over every query of the group that sees the key
        tolerance: { f32: { atol: 1e-3, rtol: 1e-3 }, bf16: { atol: 3e-2, rtol: 2e-2 } },
        run: (device, dtype) => {
          const f = on(device, dtype);
          const forward = { out: f(ref.out, shapeQ), lse: tensor(Float32Array.from(ref.lse), [s.heads, T], { device }) };
          const options = { cuSeqlens: i32(cu, device), causal: s.causal, deterministic, indicesChecked: !deterministic };
          const g = attentionBackward(f(dout, shapeQ), f(q, shapeQ), f(k, shapeK), f(v, shapeK), forward, options);
          return [g.dq, g.dk, g.dv];
        },
      });
    }
  }

  // Decoding: three sequences with cached prefixes of 0, 40 and 90 tokens take 1, 4 and 2 new
  // ones; sequence 1 sees only its first 44 keys. D 64 (the tensor-core path for bf16) and 32.
  for (const D of [64, 32]) {
    const [B, H, Hkv, maxTokens] = [3, 8, 2, 96];
    const lens = [1, 4, 2];
    const cu = starts(lens);
    const T = cu[B];
    const [qOffset, kvLens] = [[0, 40, 90], [1, 44, 92]];
    const q = randomArray(rng, T * H * D);
    const kc = randomArray(rng, B * Hkv * maxTokens * D);
    const vc = randomArray(rng, B * Hkv * maxTokens * D);
    out.push({
      op: 'attention',
      name: `attention cache layout B=${B} H=${H} Hkv=${Hkv} D=${D} maxTokens=${maxTokens}`,
      run: (device, dtype) => {
        const f = on(device, dtype);
        const cache = [B, Hkv, maxTokens, D];
        const r = attention(f(q, [T, H, D]), f(kc, cache), f(vc, cache), {
          cuSeqlens: i32(cu, device),
          qOffset: i32(qOffset, device),
          kvLens: i32(kvLens, device),
        });
        return [r.out, r.lse];
      },
    });
  }

  {
    const [B, Hkv, maxTokens, D] = [3, 2, 16, 8];
    const cu = [0, 2, 3, 7];
    const offsets = [0, 15, 9];
    const cache = randomArray(rng, B * Hkv * maxTokens * D);
    const values = randomArray(rng, cu[B] * Hkv * D);
    out.push({
      op: 'kvCacheWrite',
      name: `kvCacheWrite [${cu[B]},${Hkv},${D}] into [${B},${Hkv},${maxTokens},${D}]`,
      dtypes: ['f32', 'bf16', 'f64'],
      run: (device, dtype) => {
        const f = on(device, dtype);
        const target = f(cache, [B, Hkv, maxTokens, D]);
        kvCacheWrite(target, f(values, [cu[B], Hkv, D]), i32(cu, device), i32(offsets, device));
        return [target];
      },
    });
  }
  return out;
};
