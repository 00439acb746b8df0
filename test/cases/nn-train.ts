import {
  adamw,
  clipByNorm,
  crossEntropy,
  crossEntropyBackward,
  gradNorm,
  linearCrossEntropy,
  linearCrossEntropyBackward,
  loraLinear,
  loraLinearBackward,
} from '../../lib/ops';
import type { DType } from '../../lib/tensor';
import { tensor } from '../../lib/tensor';
import type { CaseFactory, OpCase } from '../helpers/op-case';
import { randomArray } from '../helpers/random';

// Parity cases for the loss, LoRA and optimizer ops. Labels include ignored rows; vocabulary
// chunks do not divide V; LoRA runs with dropout so both devices must draw the same mask.
export const cases: CaseFactory = (rng) => {
  const out: OpCase[] = [];
  const labelsFor = (rows: number, vocab: number) =>
    Int32Array.from({ length: rows }, (_, i) => (i % 5 === 3 ? -100 : rng.int(vocab)));

  for (const [rows, vocab] of [[3, 37], [65, 1000]]) {
    const logits = randomArray(rng, rows * vocab, 2);
    const labels = labelsFor(rows, vocab);
    const gradScale = 0.5 + rng.uniform();
    const make = (device: string, dtype: DType) => ({
      x: tensor(logits, [rows, vocab], { dtype, device }),
      l: tensor(labels, [rows], { device }),
    });
    out.push(
      {
        op: 'crossEntropy',
        name: `crossEntropy T=${rows} V=${vocab}`,
        run: (device, dtype) => {
          const { x, l } = make(device, dtype);
          const f = crossEntropy(x, l);
          return [f.loss, f.lse, f.count];
        },
      },
      {
        op: 'crossEntropyBackward',
        name: `crossEntropyBackward T=${rows} V=${vocab} sum`,
        run: (device, dtype) => {
          const { x, l } = make(device, dtype);
          return [crossEntropyBackward(x, l, crossEntropy(x, l, { reduction: 'sum' }), { reduction: 'sum', gradScale })];
        },
      },
    );
  }

  for (const [rows, features, vocab, chunkSize] of [[17, 33, 37, 8], [65, 64, 1000, 300]]) {
    const h = randomArray(rng, rows * features);
    const w = randomArray(rng, vocab * features, 1 / Math.sqrt(features));
    const labels = labelsFor(rows, vocab);
    const make = (device: string, dtype: DType) => ({
      h: tensor(h, [rows, features], { dtype, device }),
      w: tensor(w, [vocab, features], { dtype, device }),
      l: tensor(labels, [rows], { device }),
    });
    const name = `T=${rows} C=${features} V=${vocab} chunk ${chunkSize}`;
    out.push(
      {
        op: 'linearCrossEntropy',
        name: `linearCrossEntropy ${name}`,
        run: (device, dtype) => {
          const t = make(device, dtype);
          const f = linearCrossEntropy(t.h, t.w, t.l, { chunkSize });
          return [f.loss, f.lse, f.count];
        },
      },
      {
        op: 'linearCrossEntropyBackward',
        name: `linearCrossEntropyBackward ${name} (labels checked on the host)`,
        run: (device, dtype) => {
          const t = make(device, dtype);
          const checked = { chunkSize, indicesChecked: true };
          const g = linearCrossEntropyBackward(t.h, t.w, t.l, linearCrossEntropy(t.h, t.w, t.l, checked), checked);
          return [g.dh, g.dweight!];
        },
      },
    );
  }

  for (const [tokens, inF, outF, rank] of [[3, 17, 9, 4], [65, 64, 48, 8]]) {
    const host = {
      x: randomArray(rng, tokens * inF),
      w: randomArray(rng, outF * inF, 1 / Math.sqrt(inF)),
      a: randomArray(rng, rank * inF, 1 / Math.sqrt(inF)),
      b: randomArray(rng, outF * rank, 0.5),
      bias: randomArray(rng, outF),
      dy: randomArray(rng, tokens * outF),
    };
    const dropout = { p: 0.1, seed: rng.int(1 << 30), offset: rng.int(100) };
    const make = (device: string, dtype: DType) => {
      const f = (data: Float64Array, shape: number[]) => tensor(data, shape, { dtype, device });
      return {
        x: f(host.x, [tokens, inF]),
        w: f(host.w, [outF, inF]),
        a: f(host.a, [rank, inF]),
        b: f(host.b, [outF, rank]),
        bias: f(host.bias, [outF]),
        dy: f(host.dy, [tokens, outF]),
      };
    };
    const name = `T=${tokens} in=${inF} out=${outF} r=${rank} dropout ${dropout.p}`;
    out.push(
      {
        op: 'loraLinear',
        name: `loraLinear ${name}`,
        run: (device, dtype) => {
          const t = make(device, dtype);
          const f = loraLinear(t.x, t.w, t.a, t.b, { scale: 2, bias: t.bias, dropout });
          return [f.out, f.xa];
        },
      },
      {
        op: 'loraLinearBackward',
        name: `loraLinearBackward ${name}`,
        run: (device, dtype) => {
          const t = make(device, dtype);
          const { xa } = loraLinear(t.x, t.w, t.a, t.b, { scale: 2, dropout });
          const g = loraLinearBackward(t.dy, t.x, t.w, t.a, t.b, xa, { scale: 2, dropout });
          return [g.dx!, g.da, g.db];
        },
      },
    );
  }

  // Optimizer: f32 master weights and moments; the case's dtype is the gradients'.
  const sizes = [17, 4099];
  const params = sizes.map((n) => randomArray(rng, n));
  const moments = sizes.map((n) => randomArray(rng, n, 0.01));
  const seconds = sizes.map((n) => randomArray(rng, n, 0.01).map((v) => v * v));
  const grads = sizes.map((n) => randomArray(rng, n));
  const f32 = (data: Float64Array, device: string) => tensor(data, [data.length], { dtype: 'f32', device });
  const gradTensors = (device: string, dtype: DType) => grads.map((g) => tensor(g, [g.length], { dtype, device }));
  out.push(
    {
      op: 'adamw',
      name: 'adamw 2 tensors, step 3, clipped',
      run: (device, dtype) => {
        const p = params.map((d) => f32(d, device));
        const m = moments.map((d) => f32(d, device));
        const v = seconds.map((d) => f32(d, device));
        const g = gradTensors(device, dtype);
        const norm = gradNorm(g);
        adamw(p, g, m, v, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 3, maxGradNorm: 1, gradNorm: norm });
        return [...p, ...m, ...v];
      },
    },
    ...[1.5, NaN].map((guard) => ({
      op: 'adamw',
      name: `adamw guarded by ${guard}`,
      run: (device: string, dtype: DType) => {
        const p = params.map((d) => f32(d, device));
        const m = moments.map((d) => f32(d, device));
        const v = seconds.map((d) => f32(d, device));
        const skipUnlessFinite = tensor([guard], [1], { device });
        adamw(p, gradTensors(device, dtype), m, v, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 2, skipUnlessFinite });
        return [...p, ...m, ...v];
      },
    })),
    {
      op: 'gradNorm',
      name: 'gradNorm 2 tensors',
      run: (device, dtype) => [gradNorm(gradTensors(device, dtype))],
    },
    {
      op: 'clipByNorm',
      name: 'clipByNorm 2 tensors to 1',
      run: (device, dtype) => {
        const g = gradTensors(device, dtype);
        clipByNorm(g, gradNorm(g), 1);
        return g;
      },
    },
  );
  return out;
};
