/**
 * seqtune side of the transformers + peft parity check (bench/peer/hf_parity.py makes the
 * checkpoints and references): logits of the base model, LoRA logits, loss and every LoRA gradient
 * against peft, then seqtune saves the adapter for peft to load back. Prints relative errors
 * (‖ours − theirs‖ / ‖theirs‖) and writes WORK/seqtune.json; exit 1 if any exceeds its bound.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAdapter, peftKey, saveAdapter } from '../lib/model/adapter';
import { llamaArch, readModelConfig } from '../lib/model/config';
import { CheckpointReader } from '../lib/model/io/checkpoint';
import { LlamaModel } from '../lib/model/llama';
import { scope, Tensor, tensor } from '../lib/tensor';

function relErr(ours: ArrayLike<number>, theirs: ArrayLike<number>): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < theirs.length; i++) {
    d += (ours[i] - theirs[i]) ** 2;
    n += theirs[i] ** 2;
  }
  return ours.length === theirs.length ? Math.sqrt(d / n) : Infinity;
}

async function readWeights(dir: string): Promise<Map<string, Tensor>> {
  const reader = await CheckpointReader.open(dir);
  try {
    const out = new Map<string, Tensor>();
    for (const name of reader.names()) out.set(name, await reader.readTensor(name, { dtype: 'f32' }));
    return out;
  } finally {
    await reader.close();
  }
}

/** Two equal-length sequences packed as two documents; HF's labels=ids shifted inside the loss. */
function packed(ids: number[][]) {
  const flat = ids.flat();
  const labels: number[] = [];
  const positions: number[] = [];
  const cu = [0];
  for (const seq of ids) {
    seq.forEach((_, i) => {
      positions.push(i);
      labels.push(i + 1 < seq.length ? seq[i + 1] : -100);
    });
    cu.push(cu[cu.length - 1] + seq.length);
  }
  const i32 = (a: number[]) => tensor(Int32Array.from(a), [a.length], { dtype: 'i32' });
  return { batch: { inputIds: i32(flat), labels: i32(labels), positionIds: i32(positions), cuSeqlens: i32(cu) }, rows: Int32Array.from(flat.keys()), count: labels.filter((l) => l >= 0).length };
}

async function main(work: string): Promise<number> {
  const ref = JSON.parse(fs.readFileSync(path.join(work, 'ref.json'), 'utf8'));
  const results: Record<string, Record<string, number>> = {};
  const ours: Record<string, unknown> = {};
  let ok = true;
  for (const [arch, c] of Object.entries<any>(ref.cases)) {
    const config = await readModelConfig(path.join(work, arch, 'base'));
    const weights = await readWeights(path.join(work, arch, 'base'));
    const base = new LlamaModel(llamaArch(config), weights);
    const { batch, rows, count } = packed(c.ids);
    const baseLogits = await scope(async () => base.logits(batch, rows).toArray());
    const adapter = await loadAdapter(path.join(work, arch, 'adapter'));
    const adapted = new LlamaModel(llamaArch(config), weights, { lora: adapter.config, adapterWeights: adapter.weights });
    const loraLogits = await scope(async () => adapted.logits(batch, rows).toArray());
    const grads = new Map<string, Float32Array>();
    const loss = await scope(async () => {
      const result = await adapted.forward(batch);
      const pending: Array<Promise<void>> = [];
      await adapted.backward(result, 1 / count, (name, g) => pending.push(g.toArray().then((a) => void grads.set(peftKey(name), a as Float32Array))));
      await Promise.all(pending);
      return (await result.loss.loss.item()) / count;
    });
    let worstGrad = 0;
    for (const [key, want] of Object.entries<number[]>(c.grads)) {
      // peft names the adapter of the default adapter slot "...lora_A.default.weight"
      const got = grads.get(key.replace('.default.weight', '.weight'));
      worstGrad = Math.max(worstGrad, got ? relErr(got, want) : Infinity);
    }
    results[arch] = {
      base_logits_rel_err: relErr(baseLogits, c.base_logits),
      lora_logits_rel_err: relErr(loraLogits, c.lora_logits),
      loss_rel_err: Math.abs(loss - c.loss) / Math.abs(c.loss),
      worst_lora_grad_rel_err: worstGrad,
    };
    ok &&= results[arch].base_logits_rel_err <= 1e-4 && results[arch].lora_logits_rel_err <= 1e-4 && worstGrad <= 1e-3;
    await saveAdapter(adapted, path.join(work, arch, 'seqtune-adapter'), path.join(work, arch, 'base'));
    ours[arch] = { ids: c.ids, lora_logits: Array.from(loraLogits) };
  }
  fs.writeFileSync(path.join(work, 'seqtune.json'), JSON.stringify({ cases: ours }));
  console.log(JSON.stringify(results, null, 2));
  return ok ? 0 : 1;
}

main(process.argv[2]).then((code) => (process.exitCode = code));
