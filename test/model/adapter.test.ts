/**
 * PEFT adapters: the file holds PEFT's key names and shapes and adapter_config.json its fields;
 * saving and loading round-trips exactly; a loaded adapter reproduces the adapted model; merging
 * the adapter into the base gives the same logits as the base plus adapter.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, fromPeftKey, loadAdapter, mergedWeights, peftKey, saveAdapter } from '../../lib/model/adapter';
import { SafetensorsFile } from '../../lib/model/io/safetensors';
import { LlamaModel, LoraConfig } from '../../lib/model/llama';
import { addInplace } from '../../lib/ops';
import { Rng } from '../../lib/rng';
import { randn, scope } from '../../lib/tensor';
import { assertClose } from '../helpers/compare';
import { hostRng, testSeed } from '../helpers/random';
import { deviceBatch, packedBatch, randomHostWeights, tinyArch, toTensors, weightShapes } from './tiny-model';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);
const arch = tinyArch({ attentionBias: true });
const shapes = weightShapes(arch);
const host = randomHostWeights(arch, rng);
const lora: LoraConfig = { r: 3, alpha: 6, dropout: 0, targets: ['q', 'k', 'o', 'up'], useRslora: true };

function adaptedModel(): LlamaModel {
  const model = new LlamaModel(arch, toTensors(host, shapes, 'f32'), { lora, rng: new Rng(seed % 1000) });
  // Fresh adapters have B = 0; give B values so the adapter changes the output.
  for (const [name, tensor] of model.trainable()) {
    if (name.endsWith('lora_B')) scope(() => addInplace(tensor, randn(tensor.shape, { rng: new Rng(seed % 77), std: 0.3 })));
  }
  return model;
}

async function logitsOf(model: LlamaModel, batch: ReturnType<typeof packedBatch>): Promise<Float32Array> {
  const rows = Int32Array.from({ length: batch.inputIds.length }, (_, i) => i);
  return scope(async () => (await model.logits(deviceBatch(batch), rows).toArray()) as Float32Array);
}

t.test('PEFT key names, shapes and adapter_config.json', async (t) => {
  t.equal(peftKey('model.layers.0.self_attn.q_proj.lora_A'), 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
  t.equal(fromPeftKey('base_model.model.model.layers.3.mlp.up_proj.lora_B.weight'), 'model.layers.3.mlp.up_proj.lora_B');
  t.equal(fromPeftKey('base_model.model.model.layers.3.mlp.up_proj.weight'), null);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-adapter-'));
  const model = adaptedModel();
  await saveAdapter(model, dir, '/models/base');
  const config = JSON.parse(fs.readFileSync(path.join(dir, ADAPTER_CONFIG), 'utf8'));
  t.match(config, { peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 3, lora_alpha: 6, lora_dropout: 0, use_rslora: true, base_model_name_or_path: '/models/base' });
  t.same(config.target_modules, ['q_proj', 'k_proj', 'o_proj', 'up_proj']);
  const file = await SafetensorsFile.open(path.join(dir, ADAPTER_WEIGHTS));
  const names = file.names();
  t.equal(names.length, arch.numLayers * 4 * 2);
  const qA = file.info('base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight');
  const upB = file.info('base_model.model.model.layers.0.mlp.up_proj.lora_B.weight');
  t.same(qA.shape, [3, arch.hiddenSize], 'lora_A is [r, in]');
  t.same(upB.shape, [arch.intermediateSize, 3], 'lora_B is [out, r]');
  await file.close();
});

t.test('save, load and use: the loaded adapter reproduces the model exactly', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-adapter-'));
  const model = adaptedModel();
  const batch = packedBatch(rng, arch.vocabSize, [5, 8]);
  const want = await logitsOf(model, batch);
  await saveAdapter(model, dir, 'base');
  const loaded = await loadAdapter(dir);
  t.same(loaded.config, lora);
  for (const [name, tensor] of model.trainable()) {
    t.same(Buffer.from(await loaded.weights.get(name)!.toBytes()), Buffer.from(await tensor.toBytes()), `${name} round-trips`);
  }
  const reloaded = new LlamaModel(arch, toTensors(host, shapes, 'f32'), { lora: loaded.config, adapterWeights: loaded.weights });
  t.same(Array.from(await logitsOf(reloaded, batch)), Array.from(want), 'identical logits');
  const base = await logitsOf(new LlamaModel(arch, toTensors(host, shapes, 'f32')), batch);
  t.ok(base.some((v, i) => Math.abs(v - want[i]) > 1e-3), 'the adapter changes the output (the check can fail)');
});

t.test('merging the adapter into the base gives the adapted logits', async (t) => {
  const model = adaptedModel();
  const batch = packedBatch(rng, arch.vocabSize, [9, 4]);
  const want = await logitsOf(model, batch);
  const merged = new LlamaModel(arch, mergedWeights(model));
  assertClose(t, await logitsOf(merged, batch), want, { atol: 1e-4, rtol: 1e-4 }, 'merged logits');
});

t.test('bad adapters give one clear error each', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-adapter-'));
  await t.rejects(loadAdapter(dir), { code: 'ERR_IO', message: /adapter_config\.json/ });
  fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), JSON.stringify({ peft_type: 'PREFIX_TUNING' }));
  await t.rejects(loadAdapter(dir), { code: 'ERR_CONFIG', message: /only LORA/ });
  fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), JSON.stringify({ peft_type: 'LORA', r: 2, target_modules: ['qkv_proj'] }));
  await t.rejects(loadAdapter(dir), { code: 'ERR_CONFIG', message: /unsupported target module 'qkv_proj'/ });
  fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), JSON.stringify({ peft_type: 'LORA', r: 2, target_modules: ['q_proj'] }));
  await t.rejects(loadAdapter(dir), { code: 'ERR_IO', message: /adapter_model\.safetensors/ });
  const model = adaptedModel();
  const saved = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-adapter-'));
  await saveAdapter(model, saved, 'base');
  const loaded = await loadAdapter(saved);
  const wrongArch = tinyArch({ hiddenSize: 12, numHeads: 3, numKvHeads: 1, headDim: 4, attentionBias: true });
  t.throws(
    () => new LlamaModel(wrongArch, toTensors(randomHostWeights(wrongArch, rng), weightShapes(wrongArch), 'f32'), { lora: loaded.config, adapterWeights: loaded.weights }),
    { code: 'ERR_CONFIG', message: /adapter tensor .* has shape/ },
  );
});

t.test('seqtune merge writes a full checkpoint that loads and matches the adapted model', async (t) => {
  const { initModel } = await import('../../lib/model/init-model');
  const { loadModel } = await import('../../lib/model/load');
  const { main } = await import('../../lib/cli');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-merge-'));
  const base = path.join(root, 'base');
  await initModel({ preset: 'tiny', out: base, tokenizer: 'char', seed: seed % 100 });
  const { model } = await loadModel(base, { lora: { r: 2, alpha: 4, dropout: 0, targets: ['v', 'down'], useRslora: false }, rng: new Rng(1) });
  for (const [name, tensor] of model.trainable()) {
    if (name.endsWith('lora_B')) scope(() => addInplace(tensor, randn(tensor.shape, { rng: new Rng(2), std: 0.5 })));
  }
  await saveAdapter(model, path.join(root, 'adapter'), base);
  const log = console.log;
  console.log = () => undefined;
  const code = await main(['merge', '--model', base, '--adapter', path.join(root, 'adapter'), '--out', path.join(root, 'merged')]).finally(() => (console.log = log));
  t.equal(code, 0);
  const merged = await loadModel(path.join(root, 'merged'));
  const batch = packedBatch(rng, 200, [6, 3]);
  assertClose(t, await logitsOf(merged.model, batch), await logitsOf(model, batch), { atol: 1e-4, rtol: 1e-4 }, 'merged checkpoint logits');
});
