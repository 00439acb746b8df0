/**
 * seqtune side of the transformers + peft parity check (bench/peer/hf_parity.py makes the
 * checkpoints and references): logits of the base model, LoRA logits, loss and every LoRA gradient
 * against peft, then seqtune saves the adapter for peft to load back. Prints relative errors
 * (‖ours − theirs‖ / ‖theirs‖) and writes WORK/seqtune.json; exit 1 if any exceeds its bound, 2
 * when WORK/ref.json is missing (it needs transformers + peft). The results also go to
 * $OUT/hf-parity.json on the device machine, else bench/results/<date>-hf-parity.json. Everything
 * runs in f32 on the CPU (the model math, not the kernels).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAdapter, peftKey, saveAdapter } from '../lib/model/adapter';
import { llamaArch, readModelConfig } from '../lib/model/config';
import { CheckpointReader } from '../lib/model/io/checkpoint';
import { LlamaModel } from '../lib/model/llama';
import { scope, Tensor, tensor } from '../lib/tensor';

/** The most each relative error may be (f32 on both sides). */
const BOUNDS = { base_logits_rel_err: 1e-4, lora_logits_rel_err: 1e-4, worst_lora_grad_rel_err: 1e-3 };

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

async function main(work: string | undefined): Promise<number> {
  if (!work || !fs.existsSync(path.join(work, 'ref.json'))) {
    console.error(`hf-parity: ${work ? `no ${path.join(work, 'ref.json')}` : 'no WORK given'}; make it first with python3 bench/peer/hf_parity.py make WORK (needs transformers and peft)`);
    return 2;
  }
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
    ok &&= results[arch].base_logits_rel_err <= BOUNDS.base_logits_rel_err && results[arch].lora_logits_rel_err <= BOUNDS.lora_logits_rel_err && worstGrad <= BOUNDS.worst_lora_grad_rel_err;
    await saveAdapter(adapted, path.join(work, arch, 'seqtune-adapter'), path.join(work, arch, 'base'));
    ours[arch] = { ids: c.ids, lora_logits: Array.from(loraLogits) };
  }
  fs.writeFileSync(path.join(work, 'seqtune.json'), JSON.stringify({ cases: ours }));
  console.log(JSON.stringify(results, null, 2));
  const file = process.env.OUT
    ? path.join(process.env.OUT, 'hf-parity.json')
    : path.join(__dirname, '..', '..', 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-hf-parity.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const command = [path.basename(process.argv0), ...process.argv.slice(1).map((a) => path.relative(process.cwd(), a) || a)].join(' ');
  fs.writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), command, device: 'cpu (f32, both sides)', peer: { torch: ref.torch ?? null }, bounds: BOUNDS, results, passed: ok }, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
  return ok ? 0 : 1;
}

main(process.argv[2]).then((code) => (process.exitCode = code));
