/**
 * seqtune's LLaMA and Qwen2 against an independent PyTorch implementation (committed values made by
 * test/fixtures/reference/make_llama_reference.py with Debian's python3-torch 1.13 in float64):
 * logits, the summed loss, and every parameter's gradient, for two documents packed into one batch.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlamaArch, LlamaModel, LlamaShape } from '../../lib/model/llama';
import { scope, tensor, Tensor } from '../../lib/tensor';
import { assertClose } from '../helpers/compare';
import { deviceBatch, HostBatch } from './tiny-model';

interface ReferenceCase {
  config: LlamaShape & {
    ropeTheta: number;
    tieWordEmbeddings: boolean;
    attentionBias: boolean;
  };
  documents: number[][];
  weights: Record<string, { shape: number[]; data: number[] }>;
  logits: number[];
  loss: number;
  grads: Record<string, number[]>;
}

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/reference/llama-reference.json'), 'utf8')) as {
  cases: Record<string, ReferenceCase>;
};

function packed(documents: number[][]): HostBatch {
  const ids = documents.flat();
  const labels: number[] = [];
  const positions: number[] = [];
  const cu = [0];
  for (const doc of documents) {
    doc.forEach((_, i) => {
      positions.push(i);
      labels.push(i + 1 < doc.length ? doc[i + 1] : -100);
    });
    cu.push(cu[cu.length - 1] + doc.length);
  }
  return {
    inputIds: Int32Array.from(ids),
    labels: Int32Array.from(labels),
    positionIds: Int32Array.from(positions),
    cuSeqlens: Int32Array.from(cu),
  };
}

for (const [name, ref] of Object.entries(fixture.cases)) {
  for (const dtype of ['f64', 'f32'] as const) {
    t.test(`${name} matches the PyTorch reference in ${dtype}`, async (t) => {
      const c = ref.config;
      const arch: LlamaArch = { ...c, rope: { theta: c.ropeTheta } };
      const weights = new Map<string, Tensor>(
        Object.entries(ref.weights).map(([n, w]) => [n, tensor(w.data, w.shape, { dtype })]),
      );
      const model = new LlamaModel(arch, weights);
      const batch = packed(ref.documents);
      const T = batch.inputIds.length;
      const tol = dtype === 'f64' ? { atol: 1e-9, rtol: 1e-9 } : { atol: 2e-5, rtol: 1e-4 };
      const logits = await scope(async () =>
        model.logits(deviceBatch(batch), Int32Array.from({ length: T }, (_, i) => i)).toArray(),
      );
      assertClose(t, logits, ref.logits, tol, 'logits');
      const grads = new Map<string, Float64Array>();
      const loss = await scope(async () => {
        const result = await model.forward(deviceBatch(batch));
        const pending: Array<Promise<void>> = [];
        await model.backward(result, 1, (n, g) => pending.push(g.toArray().then((a) => void grads.set(n, Float64Array.from(a)))));
        await Promise.all(pending);
        return result.loss.loss.item();
      });
      assertClose(t, [loss], [ref.loss], tol, 'loss');
      t.same([...grads.keys()].sort(), Object.keys(ref.grads).sort(), 'a gradient for every parameter');
      for (const [n, want] of Object.entries(ref.grads)) {
        assertClose(t, grads.get(n) ?? [], want, dtype === 'f64' ? tol : { atol: 5e-5, rtol: 1e-3 }, `grad ${n}`);
      }
    });
  }
}
