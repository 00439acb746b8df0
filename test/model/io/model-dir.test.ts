import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { initModel } from '../../../lib/model/init-model';
import { INDEX_FILE } from '../../../lib/model/io/checkpoint';
import { loadWeights, openModelDir, saveModelDir } from '../../../lib/model/io/model-dir';
import { cast } from '../../../lib/ops';
import { hostRng, testSeed } from '../../helpers/random';
import { tempDir } from './st-bytes';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

/** A fresh tiny model to damage; returns its directory. */
async function tinyModel(t: Test, arch: 'llama' | 'qwen2' = 'llama'): Promise<string> {
  const out = path.join(tempDir(t, 'seqtune-modeldir-'), 'model');
  await initModel({ preset: 'tiny', out, arch, seed: rng.int(1e6) });
  return out;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(config);
  fs.writeFileSync(file, JSON.stringify(config));
}

t.test('bad model directories: one clear error each, saying what was expected', async (t) => {
  const root = tempDir(t, 'seqtune-modeldir-');
  const missing = path.join(root, 'nope');
  await t.rejects(openModelDir(missing), { code: 'ERR_IO', message: `model directory ${missing} does not exist (expected a folder with config.json, model.safetensors and tokenizer.json)` });
  const file = path.join(root, 'file');
  fs.writeFileSync(file, '');
  await t.rejects(openModelDir(file), { code: 'ERR_IO', message: /file is not a directory \(expected a model folder/ });

  const unreadable = await tinyModel(t);
  fs.rmSync(path.join(unreadable, 'config.json'));
  fs.mkdirSync(path.join(unreadable, 'config.json'));
  await t.rejects(openModelDir(unreadable), { code: 'ERR_IO', message: /config\.json: cannot read: EISDIR/ });

  const noConfig = await tinyModel(t);
  fs.rmSync(path.join(noConfig, 'config.json'));
  await t.rejects(openModelDir(noConfig), { code: 'ERR_IO', message: /config\.json: cannot read: ENOENT.*needs config\.json, its weights and tokenizer files/ });

  const gpt2 = await tinyModel(t);
  editConfig(gpt2, (c) => {
    c.architectures = ['GPT2LMHeadModel'];
    c.model_type = 'gpt2';
  });
  await t.rejects(openModelDir(gpt2), { code: 'ERR_CONFIG', message: /architecture GPT2LMHeadModel is not supported \(supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM\)/ });

  const moreLayers = await tinyModel(t);
  editConfig(moreLayers, (c) => (c.num_hidden_layers = 3));
  await t.rejects(openModelDir(moreLayers), {
    code: 'ERR_CONFIG',
    message: /model\.safetensors: the weights do not match config\.json \(LlamaForCausalLM, 3 layers, hidden 64, vocab 320: 30 tensors expected.*\n  missing: model\.layers\.2\.self_attn\.q_proj\.weight/s,
  });
  const wider = await tinyModel(t);
  editConfig(wider, (c) => (c.intermediate_size = 180));
  await t.rejects(openModelDir(wider), { code: 'ERR_CONFIG', message: /wrong shape: model\.layers\.0\.mlp\.gate_proj\.weight is \[176,64\], expected \[180,64\]/ });
  const llamaAsQwen = await tinyModel(t);
  editConfig(llamaAsQwen, (c) => {
    c.architectures = ['Qwen2ForCausalLM'];
    c.model_type = 'qwen2';
  });
  await t.rejects(openModelDir(llamaAsQwen), { code: 'ERR_CONFIG', message: /missing: model\.layers\.0\.self_attn\.q_proj\.bias/ });

  const noTokenizer = await tinyModel(t);
  fs.rmSync(path.join(noTokenizer, 'tokenizer.json'));
  await t.rejects(openModelDir(noTokenizer), { code: 'ERR_IO', message: /tokenizer\.json: cannot read: ENOENT.*needs the Hugging Face tokenizer\.json beside config\.json/ });

  const noWeights = await tinyModel(t);
  fs.rmSync(path.join(noWeights, 'model.safetensors'));
  await t.rejects(openModelDir(noWeights), { code: 'ERR_IO', message: /no weights found: expected model\.safetensors or model\.safetensors\.index\.json/ });
});

t.test('the tokenizer must fit the embedding', async (t) => {
  const dir = await tinyModel(t);
  const tokenizer = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  tokenizer.model.vocab['<|extra|>'] = 320;
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await t.rejects(openModelDir(dir), { code: 'ERR_CONFIG', message: /the tokenizer has 321 ids but config\.json's vocab_size is 320/ });
});

t.test('saveModelDir writes a model that opens with the same weights', async (t) => {
  const base = await tinyModel(t, 'qwen2');
  const model = await openModelDir(base);
  t.teardown(() => model.close());
  const weights = await loadWeights(model);
  const out = path.join(tempDir(t, 'seqtune-save-'), 'saved');
  const written = await saveModelDir(out, model.config, weights, { dtype: 'bf16', tokenizerFrom: base, maxShardBytes: 30000 });
  t.ok(written.includes(INDEX_FILE) && written.includes('tokenizer.json') && written.at(-1) === 'config.json', written.join(' '));
  const saved = await openModelDir(out);
  t.teardown(() => saved.close());
  t.equal(saved.config.torchDtype, 'bfloat16');
  t.same({ ...saved.config, torchDtype: null }, { ...model.config, torchDtype: null });
  for (const [name, w] of weights) {
    const back = await saved.weights.readTensor(name);
    t.equal(back.dtype, 'bf16');
    t.same(new Uint8Array(await back.toBytes()), new Uint8Array(await cast(w, 'bf16').toBytes()), `${name} is the bf16 rounding of the original`);
  }
  t.equal(saved.tokenizer.decode(saved.tokenizer.encode('tokenizer copied')), 'tokenizer copied');

  const partial = new Map(weights);
  partial.delete('model.norm.weight');
  await t.rejects(saveModelDir(out, model.config, partial), { code: 'ERR_CONFIG', message: /the weights to save: .*missing: model\.norm\.weight/s });
});
