/**
 * Whole-model gradient checks in float64: every trainable tensor's analytic gradient (full
 * fine-tuning, and LoRA with A and B both non-zero) against central finite differences of the loss.
 */
import t from 'tap';
import { LlamaModel, LoraConfig } from '../../lib/model/llama';
import { Rng } from '../../lib/rng';
import { scope, tensor, Tensor } from '../../lib/tensor';
import { hostRng, testSeed } from '../helpers/random';
import { deviceBatch, packedBatch, randomHostWeights, tinyArch, toTensors, weightShapes } from './tiny-model';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

async function lossOf(model: LlamaModel, batch: ReturnType<typeof packedBatch>): Promise<number> {
  return scope(async () => (await model.forward(deviceBatch(batch))).loss.loss.item());
}

async function analyticGrads(model: LlamaModel, batch: ReturnType<typeof packedBatch>): Promise<Map<string, Float64Array>> {
  const grads = new Map<string, Float64Array>();
  const pending: Array<Promise<void>> = [];
  await scope(async () => {
    const result = await model.forward(deviceBatch(batch));
    await model.backward(result, 1, (name, g) => {
      pending.push(g.toArray().then((a) => void grads.set(name, Float64Array.from(a))));
    });
  });
  await Promise.all(pending);
  return grads;
}

/** Central differences on `samples` random coordinates of each named tensor, perturbing its host copy. */
async function checkGrads(
  t: Tap.Test,
  name: string,
  host: Map<string, Float64Array>,
  shapes: Map<string, number[]>,
  build: (tensors: Map<string, Tensor>) => LlamaModel,
  batch: ReturnType<typeof packedBatch>,
) {
  const model = build(toTensors(host, shapes, 'f64'));
  const grads = await analyticGrads(model, batch);
  t.ok(grads.size > 0, `${name}: ${grads.size} gradients`);
  const h = 1e-6;
  let worst = 0;
  let worstAt = '';
  for (const [param, grad] of grads) {
    const values = host.get(param)!;
    t.ok(values, `${param} exists`);
    for (let s = 0; s < 3; s++) {
      const i = rng.int(values.length);
      const original = values[i];
      values[i] = original + h;
      const plus = await lossOf(build(toTensors(host, shapes, 'f64')), batch);
      values[i] = original - h;
      const minus = await lossOf(build(toTensors(host, shapes, 'f64')), batch);
      values[i] = original;
      const numeric = (plus - minus) / (2 * h);
      const error = Math.abs(numeric - grad[i]) / Math.max(1e-3, Math.abs(numeric));
      if (error > worst) {
        worst = error;
        worstAt = `${param}[${i}]: analytic ${grad[i]}, numeric ${numeric}`;
      }
    }
  }
  t.ok(worst < 1e-4, `${name}: worst relative error ${worst.toExponential(2)} ${worstAt}`);
}

for (const variant of ['llama', 'qwen2-tied'] as const) {
  t.test(`full fine-tuning gradients (${variant})`, async (t) => {
    const arch = tinyArch(variant === 'qwen2-tied' ? { attentionBias: true, tieWordEmbeddings: true } : {});
    const shapes = weightShapes(arch);
    const host = randomHostWeights(arch, rng);
    const batch = packedBatch(rng, arch.vocabSize, [3, 1, 5]);
    await checkGrads(t, variant, host, shapes, (w) => new LlamaModel(arch, w), batch);
  });
}

t.test('LoRA gradients with A and B non-zero, base frozen', async (t) => {
  const arch = tinyArch();
  const shapes = weightShapes(arch);
  const host = randomHostWeights(arch, rng);
  const lora: LoraConfig = { r: 2, alpha: 4, dropout: 0, targets: ['q', 'v', 'o', 'gate', 'down'], useRslora: false };
  // Adapter weights as host arrays too, so finite differences can perturb them.
  for (let l = 0; l < arch.numLayers; l++) {
    for (const [target, hf] of [['q', 'self_attn.q_proj'], ['v', 'self_attn.v_proj'], ['o', 'self_attn.o_proj'], ['gate', 'mlp.gate_proj'], ['down', 'mlp.down_proj']]) {
      const [out, inp] = shapes.get(`model.layers.${l}.${hf}.weight`)!;
      const base = `model.layers.${l}.${hf}`;
      shapes.set(`${base}.lora_A`, [lora.r, inp]);
      shapes.set(`${base}.lora_B`, [out, lora.r]);
      host.set(`${base}.lora_A`, Float64Array.from({ length: lora.r * inp }, () => 0.5 * rng.normal()));
      host.set(`${base}.lora_B`, Float64Array.from({ length: out * lora.r }, () => 0.5 * rng.normal()));
      void target;
    }
  }
  const batch = packedBatch(rng, arch.vocabSize, [4, 6]);
  const build = (all: Map<string, Tensor>) => {
    const adapters = new Map([...all].filter(([n]) => n.includes('lora_')));
    const base = new Map([...all].filter(([n]) => !n.includes('lora_')));
    return new LlamaModel(arch, base, { lora, adapterWeights: adapters });
  };
  await checkGrads(t, 'lora', host, shapes, build, batch);
  const grads = await analyticGrads(build(toTensors(host, shapes, 'f64')), batch);
  t.ok([...grads.keys()].every((k) => k.includes('lora_')), 'only adapter tensors receive gradients');
  t.equal(grads.size, arch.numLayers * 5 * 2);
});

t.test('fresh LoRA adapters: B is zero so the adapted model equals the base', async (t) => {
  const arch = tinyArch();
  const shapes = weightShapes(arch);
  const host = randomHostWeights(arch, rng);
  const batch = packedBatch(rng, arch.vocabSize, [5]);
  const base = await lossOf(new LlamaModel(arch, toTensors(host, shapes, 'f64')), batch);
  const lora: LoraConfig = { r: 4, alpha: 8, dropout: 0, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], useRslora: true };
  const adapted = new LlamaModel(arch, toTensors(host, shapes, 'f64'), { lora, rng: new Rng(seed & 0xffff) });
  t.ok(Math.abs((await lossOf(adapted, batch)) - base) < 1e-12);
  const a = await adapted.trainable().get('model.layers.0.self_attn.q_proj.lora_A')!.toArray();
  const bound = 1 / Math.sqrt(arch.hiddenSize);
  t.ok(a.every((x) => Math.abs(x) <= bound) && a.some((x) => x !== 0), 'A is Kaiming-uniform in ±1/sqrt(in)');
  void tensor;
});
