import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { initModelCommand } from '../../lib/cli/init-model';
import { parseCommandArgs } from '../../lib/cli/command';
import { modelConfigToJson, parseModelConfig } from '../../lib/model/config';
import { initModel } from '../../lib/model/init-model';
import { planShards } from '../../lib/model/io/checkpoint';
import { loadWeights, openModelDir } from '../../lib/model/io/model-dir';
import { safetensorsDType } from '../../lib/model/io/safetensors-format';
import { expectedWeights, parameterCount } from '../../lib/model/io/weights';
import { presetConfig } from '../../lib/model/presets';
import { hostRng, testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-init-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function digest(dir: string, file: string): string {
  return createHash('sha256').update(fs.readFileSync(path.join(dir, file))).digest('hex');
}

function stats(values: ArrayLike<number>): { mean: number; std: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  const mean = sum / values.length;
  let sq = 0;
  for (let i = 0; i < values.length; i++) sq += (values[i] - mean) ** 2;
  return { mean, std: Math.sqrt(sq / values.length) };
}

t.test('tiny init writes a directory that reads back with the preset config and HF-style values', async (t) => {
  for (const arch of ['llama', 'qwen2'] as const) {
    const out = path.join(tempDir(t), 'model');
    const modelSeed = rng.int(1e9);
    const result = await initModel({ preset: 'tiny', out, arch, seed: modelSeed });
    t.same(fs.readdirSync(out).sort(), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const raw = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    t.match(raw, { architectures: [arch === 'llama' ? 'LlamaForCausalLM' : 'Qwen2ForCausalLM'], model_type: arch, torch_dtype: 'float32', hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 176, bos_token_id: 1, eos_token_id: 2 });

    const model = await openModelDir(out);
    t.teardown(() => model.close());
    t.same(model.config, result.config, `${arch}: config round-trips`);
    t.equal(model.config.attentionBias, arch === 'qwen2');
    t.equal(result.parameters, parameterCount(model.config));
    const weights = await loadWeights(model);
    t.same([...weights.keys()], [...expectedWeights(model.config).keys()]);
    for (const [name, w] of weights) {
      t.same([w.dtype, w.shape], ['f32', expectedWeights(model.config).get(name)], `${name} shape`);
      const values = await w.toArray();
      if (name.endsWith('norm.weight')) t.ok(values.every((v) => v === 1), `${name} is all ones`);
      else if (name.endsWith('.bias')) t.ok(values.every((v) => v === 0), `${name} is all zeros`);
      else {
        // Sample mean and std of n normals: mean within 6 standard errors of 0, std within 10% of 0.02.
        const { mean, std } = stats(values);
        t.ok(Math.abs(mean) < (6 * 0.02) / Math.sqrt(values.length) && Math.abs(std / 0.02 - 1) < 0.1, `${name} ~ N(0, 0.02): mean ${mean.toExponential(2)}, std ${std.toFixed(4)}`);
      }
    }
    const embed = await weights.get('model.embed_tokens.weight')!.toArray();
    const q = await weights.get('model.layers.0.self_attn.q_proj.weight')!.toArray();
    t.notSame(Array.from(embed.slice(0, 64)), Array.from(q.slice(0, 64)), 'each tensor gets its own draw');

    const text = `Hello, ${String.fromCodePoint(0x4e00 + rng.int(1000))} ${rng.int(1e6)}!\n`;
    t.equal(model.tokenizer.decode(model.tokenizer.encode(text)), text, 'the generated tokenizer round-trips');
    t.ok(model.tokenizer.vocabSize === model.config.vocabSize, 'tokenizer padded to the vocab');
  }
});

t.test('the seed decides the weights, byte for byte', async (t) => {
  const s = rng.int(1e9);
  const [a, b, c] = [0, 1, 2].map(() => path.join(tempDir(t), 'm'));
  await initModel({ preset: 'tiny', out: a, seed: s });
  await initModel({ preset: 'tiny', out: b, seed: s });
  await initModel({ preset: 'tiny', out: c, seed: s + 1 });
  t.equal(digest(a, 'model.safetensors'), digest(b, 'model.safetensors'), 'same seed, same bytes');
  t.not(digest(a, 'model.safetensors'), digest(c, 'model.safetensors'), 'another seed, other weights');
  t.equal(digest(a, 'tokenizer.json'), digest(c, 'tokenizer.json'));
});

t.test('bf16, char tokenizer, and sharding', async (t) => {
  const out = path.join(tempDir(t), 'm');
  const alphabet = 'abcdefghij \n';
  const maxShardBytes = 20000 + rng.int(30000);
  const result = await initModel({ preset: 'tiny', out, dtype: 'bf16', tokenizer: 'char', alphabet, maxShardBytes, seed: rng.int(1000) });
  const shards = fs.readdirSync(out).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  t.ok(shards.length > 1 && fs.existsSync(path.join(out, 'model.safetensors.index.json')), `${shards.length} shards under ${maxShardBytes} bytes`);
  t.equal(result.config.torchDtype, 'bfloat16');
  const model = await openModelDir(out);
  t.teardown(() => model.close());
  const embed = await model.weights.readTensor('model.embed_tokens.weight');
  t.equal(embed.dtype, 'bf16');
  t.ok(Math.abs(stats(await embed.toArray()).std / 0.02 - 1) < 0.1, 'bf16 draws have std 0.02');
  const f32 = await loadWeights(model, { dtype: 'f32' });
  t.equal(f32.get('model.norm.weight')!.dtype, 'f32', 'converted on load');
  t.same(model.tokenizer.encode('bad cafe'), [...'bad cafe'].map((ch) => 7 + alphabet.indexOf(ch)));
});

t.test('1b and 8b presets have the Llama-3 shapes and shard at 5 GB', async (t) => {
  const c1 = presetConfig('1b', { bosTokenId: 1, eosTokenId: 2 });
  const c8 = presetConfig('8b', { bosTokenId: 1, eosTokenId: 2 });
  t.equal(parameterCount(c1), 1_235_814_400, 'Llama-3.2-1B parameter count');
  t.equal(parameterCount(c8), 8_030_261_248, 'Llama-3-8B parameter count');
  t.match(c1, { tieWordEmbeddings: true, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 32 }, headDim: 64 });
  t.match(c8, { tieWordEmbeddings: false, ropeTheta: 500000, ropeScaling: null, numKvHeads: 8, intermediateSize: 14336 });
  for (const [dtype, bytes] of [['bf16', 2], ['f32', 4]] as const) {
    const specs = [...expectedWeights(c8)].map(([name, shape]) => ({ name, shape, dtype: safetensorsDType(dtype) }));
    const shards = planShards(specs, 5e9);
    const sizes = shards.map((s) => s.reduce((sum, e) => sum + e.shape.reduce((a, b) => a * b, 1) * bytes, 0));
    t.ok(sizes.every((s) => s <= 5e9), `8b ${dtype}: every shard <= 5 GB (${sizes.map((s) => (s / 1e9).toFixed(2)).join(', ')} GB)`);
    t.ok(shards.length >= Math.ceil((8_030_261_248 * bytes) / 5e9), `8b ${dtype}: ${shards.length} shards`);
    const firstOf = shards.map((s) => s[0].shape.reduce((a, b) => a * b, 1) * bytes);
    t.ok(sizes.slice(0, -1).every((size, i) => size + firstOf[i + 1] > 5e9), 'each shard is full: the next tensor would not fit');
    t.same(shards.flat().map((e) => e.name), specs.map((e) => e.name), 'state_dict order kept');
  }
  const reparsed = parseModelConfig(JSON.parse(JSON.stringify(modelConfigToJson(c1))), '1b');
  t.same(reparsed, c1, '1b config.json round-trips');
});

t.test('the CLI command and its argument errors', async (t) => {
  const out = path.join(tempDir(t), 'cli-model');
  const logs: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void logs.push(args.join(' '));
  try {
    const { values, positionals } = parseCommandArgs(initModelCommand, ['--preset', 'tiny', '--out', out, '--arch', 'qwen2', '--seed', '7', '--quiet']);
    t.equal(await initModelCommand.run(values, positionals), 0);
  } finally {
    console.log = log;
  }
  t.match(logs.join('\n'), /wrote .*cli-model: Qwen2ForCausalLM, 0\.\d+M parameters .* seed 7/);
  t.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).model_type, 'qwen2');

  const run = async (argv: string[]) => {
    const { values, positionals } = parseCommandArgs(initModelCommand, argv);
    return initModelCommand.run(values, positionals);
  };
  await t.rejects(run(['--out', out]), { code: 'ERR_ARGUMENT', message: /--preset is required/ });
  await t.rejects(run(['--preset', 'huge', '--out', out]), { code: 'ERR_ARGUMENT', message: /--preset must be one of tiny, small, 1b, 8b, got 'huge'/ });
  await t.rejects(run(['--preset', 'tiny', '--out', out, '--arch', 'gpt2']), { code: 'ERR_ARGUMENT', message: /--arch must be one of llama, qwen2/ });
  await t.rejects(run(['--preset', 'tiny', '--out', out, '--dtype', 'f16']), { code: 'ERR_ARGUMENT', message: /--dtype must be one of f32, bf16/ });
  await t.rejects(run(['--preset', 'tiny', '--out', out, '--seed=-3']), { code: 'ERR_ARGUMENT', message: /--seed must be a non-negative integer/ });
  await t.rejects(run(['--preset', 'tiny', '--out', out]), { code: 'ERR_IO', message: /cli-model is not empty \(config\.json, .*\); init-model writes only into a new or empty directory/ });
  const file = path.join(tempDir(t), 'a-file');
  fs.writeFileSync(file, 'x');
  await t.rejects(initModel({ preset: 'tiny', out: file }), { code: 'ERR_IO', message: /a-file exists and is not a directory/ });
  await t.rejects(initModel({ preset: 'tiny', out: path.join(tempDir(t), 'x'), tokenizer: 'char', alphabet: 'x' + [...Array(400)].map((_, i) => String.fromCodePoint(0x100 + i)).join('') }), {
    code: 'ERR_CONFIG',
    message: /char-level tokenizer needs 408 ids .* vocab size is 320/,
  });
});
