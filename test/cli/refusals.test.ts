/**
 * What cannot be right is refused (or warned about) with the flag, file or tensor named: conflicting
 * and repeated flags, stray arguments, impossible LoRA ranks, lengths past the model's positions,
 * damaged resume files, empty datasets, non-finite weights, and library calls with wrong arguments.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capture } from '../helpers/cli';
import { generate } from '../../lib/model/generate';
import { loadModel } from '../../lib/model/load';
import { add } from '../../lib/ops';
import { zeros, tensor } from '../../lib/tensor';
import { hostRng, testSeed } from '../helpers/random';
import { dataFile, sampleRecords, tempOut, tinyModelDir } from '../train/fixtures';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);
const small = ['--device', 'cpu', '--batch-size', '2', '--max-length', '64', '--log-every', '1000'];

/** Writes a NaN into one element of `tensorName` in an f32 model.safetensors. */
function poison(modelDir: string, tensorName: string): void {
  const file = path.join(modelDir, 'model.safetensors');
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const entry = header[tensorName];
  const count = (entry.data_offsets[1] - entry.data_offsets[0]) / 4;
  bytes.writeFloatLE(NaN, 8 + n + entry.data_offsets[0] + 4 * rng.int(count));
  fs.writeFileSync(file, bytes);
}

t.test('conflicting flags, a flag given twice and stray arguments are refused, naming them', async (t) => {
  const model = await tinyModelDir(seed);
  const data = dataFile(sampleRecords);
  const train = ['train', '--model', model, '--data', data, '--out', tempOut(), ...small];
  const cases: Array<[string[], RegExp]> = [
    [[...train, '--full', '--lora-r', '8'], /--full and --lora-r cannot be used together/],
    [[...train, '--epochs', '2', '--max-steps', '3'], /--epochs and --max-steps cannot be used together/],
    [[...train, '--batch-tokens', '128'], /--batch-size and --batch-tokens cannot be used together/],
    [[...train, '--dev', data, '--val-size', '2'], /--dev and --val-size cannot be used together/],
    [[...train, '--resume', model, '--overwrite'], /--resume and --overwrite cannot be used together/],
    [[...train, '--lr', '1e-3', '--lr', '2e-3'], /--lr is given more than once/],
    [[...train, 'extra.jsonl'], /unexpected argument 'extra\.jsonl'/],
    [['generate', '--model', model, '--prompt', 'a', '--prompts', data], /--prompt and --prompts cannot be used together/],
    [['generate', '--model', model, '--prompt', 'a', 'b'], /unexpected argument 'b'/],
    [['generate', '--model', model, '--prompt', 'a', '--max-new-tokens=-1'], /--max-new-tokens must be a positive integer, got -1/],
    [['generate', '--model', model, '--prompt', 'a', '--max-new-tokens', '-1'], /'--max-new-tokens' argument is ambiguous/],
    [['generate', '--model', model, '--prompt', 'a', '--max-new-tokens', '2.5'], /--max-new-tokens must be a positive integer, got 2\.5/],
    [['info', 'now'], /unexpected argument 'now'/],
  ];
  for (const [argv, message] of cases) {
    const r = await capture(argv);
    t.equal(r.code, 2, `${argv.slice(-3).join(' ')}: exit 2`);
    t.match(r.stderr, message);
  }
  const stop = await capture(['generate', '--model', model, '--prompt', 'a', '--max-new-tokens', '2', '--stop', 'x', '--stop', 'y', '--device', 'cpu']);
  t.equal(stop.code, 0, `a flag that takes several values may repeat: ${stop.stderr}`);
});

t.test('a LoRA rank above min(in, out) is refused before any weight is read', async (t) => {
  const model = await tinyModelDir(seed + 1);
  const out = tempOut();
  const r = await capture(['train', '--model', model, '--data', dataFile(sampleRecords), '--out', out, ...small, '--lora-r', String(65 + rng.int(100000))]);
  t.equal(r.code, 1);
  t.match(r.stderr, /LoRA rank \d+ is larger than the q projection allows \(min\(in 64, out 64\) = 64\); use --lora-r 64 or less/);
  t.notOk(fs.existsSync(path.join(out, 'checkpoints')), 'nothing trained');
  const ok = await capture(['train', '--model', model, '--data', dataFile(sampleRecords), '--out', tempOut(), ...small, '--lora-r', '32', '--lora-targets', 'q,o', '--max-steps', '1']);
  t.equal(ok.code, 0, `rank 32 <= 64 is fine: ${ok.stderr.slice(-300)}`);
});

t.test('--max-length past max_position_embeddings, a warmup as long as the run and an over-long prompt are warned about', async (t) => {
  const model = await tinyModelDir(seed + 2);
  const r = await capture(['train', '--model', model, '--data', dataFile(sampleRecords), '--out', tempOut(), '--device', 'cpu', '--batch-size', '2', '--max-length', '600', '--max-steps', '2', '--warmup-steps', '5']);
  t.equal(r.code, 0, r.stderr.slice(-300));
  t.match(r.stderr, /warning: --max-length 600 is above the model's max_position_embeddings \(512\)/);
  t.match(r.stderr, /warning: the warmup \(5 steps\) is not shorter than the run \(2 steps\)/);
  const g = await capture(['generate', '--model', model, '--prompt', 'x'.repeat(510), '--max-new-tokens', '4', '--template', 'raw', '--device', 'cpu']);
  t.equal(g.code, 0, g.stderr);
  t.match(g.stderr, /warning: a prompt of \d+ tokens plus --max-new-tokens 4 goes past the model's max_position_embeddings \(512\)/);
});

t.test('errors name their file: tokenizer.json ids, damaged resume files, an empty dataset', async (t) => {
  const model = await tinyModelDir(seed + 3);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  const args = ['train', '--model', model, '--data', data, '--out', out, ...small, '--max-steps', '2', '--save-every', '1'];
  t.equal((await capture(args)).code, 0);
  const step = path.join(out, 'checkpoints', 'step-000002');
  const state = path.join(step, 'trainer-state.json');
  const good = fs.readFileSync(state, 'utf8');
  const damaged: Array<[string, () => void, RegExp]> = [
    ['torn trainer-state.json', () => fs.writeFileSync(state, good.slice(0, rng.int(good.length - 2) + 1)), /--resume: .*trainer-state\.json is damaged/],
    ['trainer-state.json without a step', () => fs.writeFileSync(state, JSON.stringify({ ...JSON.parse(good), step: 'two' })), /trainer-state\.json is damaged: step must be a non-negative integer/],
    ['a bad loader state', () => fs.writeFileSync(state, JSON.stringify({ ...JSON.parse(good), data: { seed: -1 } })), /trainer-state\.json is damaged: its loader or RNG state is not usable/],
    ['a truncated optimizer file', () => fs.truncateSync(path.join(step, 'optimizer.safetensors'), 100), /optimizer\.safetensors/],
  ];
  for (const [name, damage, message] of damaged) {
    damage();
    const r = await capture([...args, '--resume', out]);
    t.equal(r.code, 1, `${name}: exit 1`);
    t.match(r.stderr, message, `${name}: ${r.stderr.trim().split('\n').pop()}`);
    fs.writeFileSync(state, good);
  }

  const tokenizer = path.join(model, 'tokenizer.json');
  const json = JSON.parse(fs.readFileSync(tokenizer, 'utf8'));
  const key = Object.keys(json.model.vocab)[3 + rng.int(10)];
  json.model.vocab[key] = 320 + rng.int(100000);
  fs.writeFileSync(tokenizer, JSON.stringify(json));
  const tok = await capture(['generate', '--model', model, '--prompt', 'hi', '--device', 'cpu']);
  t.equal(tok.code, 1);
  t.match(tok.stderr, /tokenizer\.json: token ids go up to \d+, out of range for config\.json's vocab_size 320/);

  const model2 = await tinyModelDir(seed + 4);
  // every prompt is longer than --max-length, so truncation leaves no response token to learn
  const longPrompts = dataFile(sampleRecords.map((r) => ({ ...r, instruction: `${r.instruction} ${'please '.repeat(4)}` })));
  const empty = await capture(['train', '--model', model2, '--data', longPrompts, '--out', tempOut(), '--device', 'cpu', '--max-length', '8']);
  t.equal(empty.code, 1, empty.stderr);
  t.match(empty.stderr, /data\.jsonl: no training examples, all 6 records were left out: 6 with nothing to learn \(an empty response, or one cut off entirely by --max-length 8\)/);
  const none = dataFile([]);
  fs.writeFileSync(none, '');
  const nothing = await capture(['train', '--model', model2, '--data', none, '--out', tempOut(), ...small]);
  t.equal(nothing.code, 1);
  t.match(nothing.stderr, /data\.jsonl: no training examples, they hold no records/);
});

t.test('augment with nothing to write fails and writes nothing', async (t) => {
  const dir = path.dirname(dataFile([]));
  const emptyIn = path.join(dir, 'empty.jsonl');
  fs.writeFileSync(emptyIn, '');
  const invalidIn = path.join(dir, 'invalid.jsonl');
  const n = 2 + rng.int(5);
  fs.writeFileSync(invalidIn, Array.from({ length: n }, (_, i) => JSON.stringify({ text: `not a record ${i}` })).join('\n') + '\n');
  const out = path.join(dir, 'out.jsonl');
  const cases: Array<[string[], RegExp]> = [
    [['--in', emptyIn], /empty\.jsonl: nothing to write, it has no records \(the file is empty\); no output was written/],
    [['--in', invalidIn, '--skip-invalid'], new RegExp(`invalid\\.jsonl: nothing to write, all ${n} records were invalid and skipped`)],
  ];
  for (const [args, message] of cases) {
    const r = await capture(['augment', ...args, '--out', out, '--strategy', 'repeat', '--fraction', '0.5']);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, message);
    t.notOk(fs.existsSync(out), 'no output file');
    t.same(fs.readdirSync(dir).filter((f) => f.includes('partial')), [], 'no temporary left');
  }
});

t.test('non-finite weights: training names the tensor, generation refuses', async (t) => {
  const model = await tinyModelDir(seed + 5);
  const layer = rng.int(2);
  const name = `model.layers.${layer}.mlp.down_proj.weight`;
  poison(model, name);
  const r = await capture(['train', '--model', model, '--data', dataFile(sampleRecords), '--out', tempOut(), ...small, '--max-steps', '3']);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`the weights it started from are not finite \\(${name.replace(/\./g, '\\.')} holds NaN or Inf values\\)`));
  t.notMatch(r.stderr, /lower learning rate|step 0\)/, 'no advice that does not apply');
  const g = await capture(['generate', '--model', model, '--prompt', 'hello', '--max-new-tokens', '3', '--device', 'cpu']);
  t.equal(g.code, 1);
  t.match(g.stderr, new RegExp(`scores for prompt 0 are NaN .* not finite: ${name.replace(/\./g, '\\.')} holds NaN or Inf values`));
});

t.test('library calls with wrong arguments say what was expected', async (t) => {
  t.throws(() => add('a' as never, 'b' as never), { code: 'ERR_ARGUMENT', message: /add: input 1 must be a Tensor, got string "a"/ });
  const x = tensor([1, 2], [2]);
  t.throws(() => add(x, { handle: 1 } as never), { code: 'ERR_ARGUMENT', message: /add: input 2 must be a Tensor, got a Object/ });
  x.dispose();
  t.throws(() => zeros(undefined as never), { code: 'ERR_SHAPE', message: /zeros: shape must be an array of non-negative integers, e\.g\. \[2, 3\]; got undefined/ });
  t.throws(() => zeros([2, -1]), { code: 'ERR_SHAPE', message: /got \[2,-1\]/ });
  const loaded = await loadModel(await tinyModelDir(seed + 6));
  await t.rejects(generate(loaded.model, loaded.tokenizer, [12345] as never, { maxNewTokens: 2 }), {
    code: 'ERR_ARGUMENT',
    message: /generate: prompts must be an array of strings; prompt 0 is a number \(12345\)/,
  });
  await t.rejects(generate(loaded.model, loaded.tokenizer, ['hi'], { maxNewTokens: -1 }), { code: 'ERR_ARGUMENT', message: /maxNewTokens must be a positive integer, got -1/ });
});
