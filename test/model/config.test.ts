import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { modelConfigToJson, llamaArch, ModelConfig, parseModelConfig, readModelConfig } from '../../lib/model/config';
import { checkWeights, expectedWeights, parameterCount } from '../../lib/model/io/weights';
import { hostRng, testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);
const fixtures = path.join(__dirname, '..', 'fixtures', 'configs');
const fixture = (name: string): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(fixtures, name), 'utf8'));

t.test('real configs parse, and their parameter counts match the published ones', async (t) => {
  const llama = parseModelConfig(fixture('llama-3.2-1b.json'), 'llama');
  t.match(llama, {
    architecture: 'LlamaForCausalLM',
    modelType: 'llama',
    vocabSize: 128256,
    hiddenSize: 2048,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    tieWordEmbeddings: true,
    attentionBias: false,
    bosTokenId: 128000,
    eosTokenIds: [128001],
    slidingWindow: null,
    torchDtype: 'bfloat16',
  });
  t.equal(parameterCount(llama), 1_235_814_400, 'Llama-3.2-1B');
  t.notOk(expectedWeights(llama).has('lm_head.weight'), 'tied: no lm_head');

  const qwen = parseModelConfig(fixture('qwen2.5-0.5b.json'), 'qwen');
  t.match(qwen, { modelType: 'qwen2', attentionBias: true, headDim: 64, slidingWindow: null, ropeScaling: null, ropeTheta: 1e6 });
  t.equal(parameterCount(qwen), 494_032_768, 'Qwen2.5-0.5B');
  const names = expectedWeights(qwen);
  t.same(names.get('model.layers.3.self_attn.k_proj.bias'), [128]);
  t.notOk(names.has('model.layers.3.self_attn.o_proj.bias'), 'Qwen2 has no o_proj bias');

  const mistral = parseModelConfig(fixture('mistral-7b-v0.1.json'), 'mistral', { maxSeqLen: 4096 });
  t.match(mistral, { modelType: 'mistral', slidingWindow: 4096, headDim: 128, tieWordEmbeddings: false });
  t.equal(parameterCount(mistral), 7_241_732_096, 'Mistral-7B-v0.1');
  t.same(expectedWeights(mistral).get('lm_head.weight'), [32000, 4096]);

  t.same(llamaArch(llama), {
    vocabSize: 128256, hiddenSize: 2048, intermediateSize: 8192, numLayers: 16, numHeads: 32, numKvHeads: 8, headDim: 64, rmsNormEps: 1e-5,
    rope: { theta: 500000, scaling: llama.ropeScaling }, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null,
  });
});

t.test('sliding windows are refused only where they would matter', async (t) => {
  const mistral = fixture('mistral-7b-v0.1.json');
  t.throws(() => parseModelConfig(mistral, 'm.json'), { code: 'ERR_CONFIG', message: /m\.json: sliding-window attention \(window 4096 < max_position_embeddings 32768\).*maxSeqLen <= 4096/ });
  t.throws(() => parseModelConfig(mistral, 'm.json', { maxSeqLen: 4097 }), { code: 'ERR_CONFIG' });
  t.equal(parseModelConfig({ ...mistral, sliding_window: null }, 'm').slidingWindow, null, 'v0.2 style: no window');
  t.equal(parseModelConfig({ ...mistral, sliding_window: 32768 }, 'm').slidingWindow, null, 'window covers the context');
  const { sliding_window: _, ...noKey } = mistral;
  t.throws(() => parseModelConfig(noKey, 'm'), { message: /window 4096/ }, 'absent key = MistralConfig default 4096');
  const qwen = fixture('qwen2.5-0.5b.json');
  t.throws(() => parseModelConfig({ ...qwen, use_sliding_window: true, sliding_window: 4096 }, 'q'), { message: /window 4096 < max_position_embeddings 32768/ });
  t.equal(parseModelConfig({ ...qwen, use_sliding_window: false, sliding_window: 4096 }, 'q').slidingWindow, null, 'switched off');
});

t.test('bad configs give one clear error each', async (t) => {
  const base = fixture('llama-3.2-1b.json');
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['unsupported architecture', { ...base, architectures: ['GPT2LMHeadModel'] }, /architecture GPT2LMHeadModel is not supported \(supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM\)/],
    ['no architectures', { ...base, architectures: undefined }, /"architectures" must name one model class/],
    ['model_type mismatch', { ...base, model_type: 'gemma' }, /model_type "gemma" does not match LlamaForCausalLM \(expected "llama"\)/],
    ['missing hidden_size', { ...base, hidden_size: undefined }, /missing "hidden_size"/],
    ['bad layers', { ...base, num_hidden_layers: 2.5 }, /"num_hidden_layers" must be a positive integer, got 2\.5/],
    ['heads vs kv heads', { ...base, num_key_value_heads: 5 }, /num_attention_heads 32 is not a multiple of num_key_value_heads 5/],
    ['hidden vs heads', { ...base, hidden_size: 2050, head_dim: undefined }, /hidden_size 2050 is not divisible by num_attention_heads 32/],
    ['odd head_dim', { ...base, head_dim: 63 }, /head_dim 63 must be even/],
    ['eos out of vocab', { ...base, eos_token_id: [128001, 200000] }, /"eos_token_id" must be token ids below vocab_size 128256/],
    ['gelu', { ...base, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
    ['mlp bias', { ...base, mlp_bias: true }, /mlp_bias: true is not supported/],
    ['llama attention bias', { ...base, attention_bias: true }, /attention_bias: true is not supported for Llama/],
    ['yarn', { ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling type "yarn" is not supported \(supported: llama3, linear, or none\)/],
    ['llama3 incomplete', { ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } }, /rope_scaling\): missing "low_freq_factor"/],
    ['eps', { ...base, rms_norm_eps: -1 }, /"rms_norm_eps" must be a positive number/],
    ['tie not boolean', { ...base, tie_word_embeddings: 'yes' }, /"tie_word_embeddings" must be true or false/],
  ];
  for (const [label, json, expect] of cases) t.throws(() => parseModelConfig(json, '/m/config.json'), { code: 'ERR_CONFIG', message: expect }, label);
  t.throws(() => parseModelConfig([1], 'x'), { message: /x: config is not a JSON object/ });
  t.same(parseModelConfig({ ...base, rope_scaling: { type: 'linear', factor: 2 } }, 'x').ropeScaling, { type: 'linear', factor: 2 });
  t.equal(parseModelConfig({ ...base, rope_scaling: { rope_type: 'default' } }, 'x').ropeScaling, null);
  t.equal(parseModelConfig({ ...base, rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 12345 } }, 'x').ropeTheta, 12345, 'transformers 5 rope_parameters');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await t.rejects(readModelConfig(dir), { code: 'ERR_IO', message: /config\.json: cannot read: ENOENT.*needs config\.json, its weights and tokenizer files/ });
  fs.writeFileSync(path.join(dir, 'config.json'), '{"architectures": [');
  await t.rejects(readModelConfig(dir), { code: 'ERR_CONFIG', message: /config\.json: not valid JSON/ });
});

function randomConfig(): ModelConfig {
  const modelType = (['llama', 'mistral', 'qwen2'] as const)[rng.int(3)];
  const numKvHeads = 1 + rng.int(4);
  const numHeads = numKvHeads * (1 + rng.int(4));
  const headDim = 2 * (1 + rng.int(16));
  const vocabSize = 10 + rng.int(1000);
  return {
    architecture: ({ llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' } as const)[modelType],
    modelType,
    vocabSize,
    hiddenSize: numHeads * headDim,
    intermediateSize: 1 + rng.int(500),
    numLayers: 1 + rng.int(6),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: 10 ** -(4 + rng.int(3)),
    ropeTheta: 1000 + rng.int(1e6),
    ropeScaling: rng.int(2) ? null : { type: 'llama3', factor: 1 + rng.int(32), lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 1024 },
    tieWordEmbeddings: rng.int(2) === 1,
    attentionBias: modelType === 'qwen2',
    maxPositionEmbeddings: 128 + rng.int(4096),
    bosTokenId: rng.int(vocabSize),
    eosTokenIds: [rng.int(vocabSize)],
    slidingWindow: null,
    torchDtype: 'float32',
  };
}

t.test('configs round-trip through config.json form', async (t) => {
  for (let i = 0; i < 30; i++) {
    const config = randomConfig();
    t.same(parseModelConfig(JSON.parse(JSON.stringify(modelConfigToJson(config))), 'rt'), config, `${config.architecture} #${i}`);
  }
});

t.test('checkWeights lists missing, unexpected and mis-shaped tensors', async (t) => {
  const config = { ...randomConfig(), tieWordEmbeddings: true };
  const expected = expectedWeights(config);
  const perLayer = config.attentionBias ? 12 : 9;
  t.equal(expected.size, 2 + perLayer * config.numLayers, 'embed + norm + per-layer tensors');
  t.same(checkWeights(config, expected, 'ok'), [], 'the expected set passes');

  const names = [...expected.keys()];
  const extras = new Map(expected);
  extras.set('model.layers.0.self_attn.rotary_emb.inv_freq', [config.headDim / 2]);
  extras.set('lm_head.weight', [config.vocabSize, config.hiddenSize]);
  t.same(checkWeights(config, extras, 'ok').sort(), ['lm_head.weight', 'model.layers.0.self_attn.rotary_emb.inv_freq'], 'ignorable extras');

  const damaged = new Map(expected);
  const gone = names[rng.int(names.length)];
  damaged.delete(gone);
  const reshaped = names.filter((n) => n !== gone)[rng.int(names.length - 1)];
  damaged.set(reshaped, [...expected.get(reshaped)!, 2]);
  damaged.set('model.layers.99.mlp.gate_proj.weight', [1, 1]);
  const error = (() => {
    try {
      checkWeights(config, damaged, '/ckpt');
    } catch (e) {
      return e as Error & { code: string };
    }
  })();
  t.equal(error?.code, 'ERR_CONFIG');
  t.match(error?.message, `/ckpt: the weights do not match config.json (${config.architecture}, ${config.numLayers} layers`);
  t.match(error?.message, `missing: ${gone}`);
  t.match(error?.message, `wrong shape: ${reshaped} is [${[...expected.get(reshaped)!, 2].join(',')}], expected [${expected.get(reshaped)!.join(',')}]`);
  t.match(error?.message, 'unexpected: model.layers.99.mlp.gate_proj.weight');
});
