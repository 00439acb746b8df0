/**
 * Parity cases for the transformer-block building blocks: rmsnormResidual, rope, swiglu, dropout,
 * embedding and their backwards. Backward cases take host-made inputs (rstd from the reference) so
 * they run on a device even where the forward op is missing.
 */
import {
  dropout,
  embedding,
  embeddingBackward,
  rmsnormResidual,
  rmsnormResidualBackward,
  rope,
  ropeBackward,
  RopeOptions,
  swiglu,
  swigluBackward,
} from '../../lib/ops';
import { DType, tensor } from '../../lib/tensor';
import type { CaseFactory, OpCase } from '../helpers/op-case';
import { randomArray, randomInts } from '../helpers/random';
import { rmsnormRef } from '../reference/rmsnorm-residual';

const llama31: RopeOptions = {
  theta: 500000,
  scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
};

export const cases: CaseFactory = (rng) => {
  const out: OpCase[] = [];
  const on = (device: string, dtype: DType) => (data: Float64Array, shape: number[]) => tensor(data, shape, { dtype, device });

  for (const [rows, cols] of [[1, 1], [17, 65], [5, 4099]]) {
    const n = rows * cols;
    const [x, residual, dout, dsum] = [0, 1, 2, 3].map(() => randomArray(rng, n));
    const weight = randomArray(rng, cols, 0.3).map((v) => 1 + v);
    const eps = 1e-5;
    // rstd of the f32 sum: the backward only needs a consistent value, not the device's forward
    const rstd = Float32Array.from(rmsnormRef(x, residual, weight, cols, eps).rstd);
    out.push(
      {
        op: 'rmsnormResidual',
        name: `rmsnormResidual [${rows},${cols}] with residual`,
        run: (device, dtype) => {
          const f = on(device, dtype);
          const r = rmsnormResidual(f(x, [rows, cols]), f(weight, [cols]), { eps, residual: f(residual, [rows, cols]) });
          return [r.out, r.sum, r.rstd];
        },
      },
      {
        op: 'rmsnormResidual',
        name: `rmsnormResidual [${rows},${cols}] without residual`,
        run: (device, dtype) => {
          const f = on(device, dtype);
          const r = rmsnormResidual(f(x, [rows, cols]), f(weight, [cols]), { eps });
          return [r.out, r.sum, r.rstd];
        },
      },
      {
        op: 'rmsnormResidualBackward',
        name: `rmsnormResidualBackward [${rows},${cols}]`,
        // dweight sums `rows` products of O(1) terms
        tolerance: { bf16: { atol: 2e-2 * Math.sqrt(rows), rtol: 2e-2 } },
        run: (device, dtype) => {
          const f = on(device, dtype);
          const sum = f(x.map((v, i) => v + residual[i]), [rows, cols]);
          const forward = { out: sum, sum, rstd: tensor(rstd, [rows], { device }) };
          const g = rmsnormResidualBackward(f(dout, [rows, cols]), forward, f(weight, [cols]), { dsum: f(dsum, [rows, cols]) });
          return [g.dx, g.dweight!];
        },
      },
    );
  }

  for (const [tokens, heads, dim] of [[1, 1, 2], [17, 3, 64], [65, 4, 128]]) {
    const n = tokens * heads * dim;
    const x = randomArray(rng, n);
    const positions = randomInts(rng, tokens, 0, 131072);
    const variants: Array<[string, RopeOptions]> = [
      ['none', { theta: 10000 }],
      ['linear', { theta: 10000, scaling: { type: 'linear', factor: 4 } }],
      ['llama3', llama31],
    ];
    for (const [label, options] of variants) {
      for (const inverse of [false, true]) {
        out.push({
          op: 'rope',
          name: `rope${inverse ? 'Backward' : ''} ${label} [${tokens},${heads},${dim}]`,
          run: (device, dtype) => {
            const pos = tensor(positions, [tokens], { device });
            const input = on(device, dtype)(x, [tokens, heads, dim]);
            return [inverse ? ropeBackward(input, pos, options) : rope(input, pos, options)];
          },
        });
      }
    }
  }

  for (const shape of [[3], [65, 129]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const [gate, up, dout] = [3, 1, 1].map((s) => randomArray(rng, n, s));
    out.push(
      { op: 'swiglu', name: `swiglu [${shape}]`, run: (device, dtype) => [swiglu(on(device, dtype)(gate, shape), on(device, dtype)(up, shape))] },
      {
        op: 'swigluBackward',
        name: `swigluBackward [${shape}]`,
        run: (device, dtype) => {
          const f = on(device, dtype);
          const g = swigluBackward(f(dout, shape), f(gate, shape), f(up, shape));
          return [g.dgate, g.dup];
        },
      },
    );
  }

  for (const [n, p] of [[17, 0.5], [4099, 0.1], [4099, 0]]) {
    const x = randomArray(rng, n);
    const draw = { seed: rng.int(2 ** 31), offset: rng.int(1000) };
    // the mask must match bit for bit: a flipped element is off by a whole value
    out.push({ op: 'dropout', name: `dropout n=${n} p=${p}`, run: (device, dtype) => [dropout(on(device, dtype)(x, [n]), { p, ...draw })] });
  }

  for (const [tokens, vocab, cols] of [[1, 1, 1], [65, 300, 64], [1000, 37, 96]]) {
    const ids = randomInts(rng, tokens, 0, vocab);
    const table = randomArray(rng, vocab * cols);
    const dout = randomArray(rng, tokens * cols);
    // the larger cases as a host-checked training batch passes them (no device-side read-back)
    const indicesChecked = tokens > 1;
    const checked = indicesChecked ? ' (indices checked on the host)' : '';
    out.push(
      {
        op: 'embedding',
        name: `embedding T=${tokens} V=${vocab} C=${cols}${checked}`,
        run: (device, dtype) => [embedding(tensor(ids, [tokens], { device }), on(device, dtype)(table, [vocab, cols]), { indicesChecked })],
      },
      {
        op: 'embeddingBackward',
        name: `embeddingBackward T=${tokens} V=${vocab} C=${cols}${checked}`,
        // each row accumulates about tokens/vocab gradients
        tolerance: { bf16: { atol: 2e-2 * Math.sqrt(Math.max(1, tokens / vocab)), rtol: 2e-2 } },
        run: (device, dtype) => [embeddingBackward(on(device, dtype)(dout, [tokens, cols]), tensor(ids, [tokens], { device }), vocab, { indicesChecked })],
      },
    );
  }
  return out;
};
