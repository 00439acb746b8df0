/**
 * One rule for the weights' dtype in every command that loads a model (lib/device weightsDtype):
 * auto is bf16 on a GPU and f32 on the CPU, f32/bf16 force it, anything else is a usage error
 * naming the flag; generate and eval take --weights-dtype and load the base weights in that dtype
 * while LoRA adapters stay f32. The GPU side of the rule is checked with device names alone.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeEvalCommand } from '../../lib/cli/eval';
import { weightsDtype } from '../../lib/device';
import { saveAdapter } from '../../lib/model/adapter';
import { initModel } from '../../lib/model/init-model';
import { loadModel } from '../../lib/model/load';
import { Rng } from '../../lib/rng';
import { writeXquad } from '../eval/fixtures';
import { capture } from '../helpers/cli';
import { testSeed } from '../helpers/random';

t.test('auto is bf16 on any GPU and f32 on the CPU; explicit choices win; bad ones name the flag', async (t) => {
  for (const gpu of ['cuda:0', 'cuda:3']) {
    t.equal(weightsDtype('auto', gpu), 'bf16', `auto on ${gpu}`);
    t.equal(weightsDtype(undefined, gpu), 'bf16', `default on ${gpu}`);
    t.equal(weightsDtype('f32', gpu), 'f32', `f32 on ${gpu}`);
  }
  t.equal(weightsDtype('auto', 'cpu'), 'f32');
  t.equal(weightsDtype(undefined, 'cpu'), 'f32');
  t.equal(weightsDtype('bf16', 'cpu'), 'bf16');
  for (const bad of ['f16', 'BF16', '', 'fp8']) {
    t.throws(() => weightsDtype(bad, 'cpu'), { code: 'ERR_ARGUMENT', message: new RegExp(`--weights-dtype must be auto, f32, bf16, got '${bad}'`) });
  }
});

t.test('generate and eval load the base in the chosen dtype; adapters stay f32', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-wdtype-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'model');
  await initModel({ preset: 'tiny', out: dir, tokenizer: 'char', seed: testSeed() % 1000 });

  // An adapter as training makes one on a GPU: bf16 base, f32 LoRA.
  const lora = { r: 4, alpha: 8, dropout: 0, targets: ['q', 'v'] as const, useRslora: false };
  const trained = await loadModel(dir, { dtype: 'bf16', lora: { ...lora, targets: [...lora.targets] }, rng: new Rng(testSeed() % 997) });
  const adapter = path.join(root, 'adapter');
  await saveAdapter(trained.model, adapter, dir);
  const base = [...trained.model.tensors()].filter(([n]) => !n.includes('lora_'));
  t.ok(base.length > 0 && base.every(([, w]) => w.dtype === 'bf16'), 'base weights bf16');
  t.ok([...trained.model.trainable().values()].every((w) => w.dtype === 'f32'), 'fresh adapters f32');
  for (const w of trained.model.tensors().values()) w.dispose();

  const loaded = await loadModel(dir, { dtype: 'bf16', adapterDir: adapter });
  const adapters = [...loaded.model.tensors()].filter(([n]) => n.includes('lora_'));
  t.ok(adapters.length > 0 && adapters.every(([, w]) => w.dtype === 'f32'), 'a loaded adapter stays f32 on a bf16 base');
  for (const w of loaded.model.tensors().values()) w.dispose();

  for (const [flag, want] of [[[], 'f32'], [['--weights-dtype', 'bf16'], 'bf16'], [['--weights-dtype', 'auto'], 'f32']] as const) {
    const run = await capture(['generate', '--model', dir, '--adapter', adapter, '--prompt', 'hi', '--max-new-tokens', '3', '--device', 'cpu', ...flag]);
    t.equal(run.code, 0, run.stderr);
    t.match(run.stderr, new RegExp(`^weights: ${want} on cpu$`, 'm'), `generate ${flag.join(' ') || '(default)'}`);
  }
  const bad = await capture(['generate', '--model', dir, '--prompt', 'hi', '--device', 'cpu', '--weights-dtype', 'f16']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--weights-dtype must be auto, f32, bf16, got 'f16'/);

  // eval hands the flag to its generator loader (here the default one, to the real model).
  const data = writeXquad(root);
  const seen: unknown[] = [];
  const evalCmd = makeEvalCommand((model, adapterDir, device, dtype) => {
    seen.push([model, adapterDir, device, dtype]);
    return { generate: async (prompts: string[]) => prompts.map(() => 'Result: x') };
  });
  const values = { model: dir, bench: 'xquad', data, out: path.join(root, 'eval'), device: 'cpu', 'weights-dtype': 'bf16', json: true };
  const log = console.log;
  console.log = () => undefined;
  try {
    t.equal(await evalCmd.run(values, []), 0);
  } finally {
    console.log = log;
  }
  t.same(seen, [[dir, undefined, 'cpu', 'bf16']], 'eval passes --weights-dtype to its loader');
  const real = await capture(['eval', '--model', dir, '--adapter', adapter, '--bench', 'xquad', '--data', data, '--out', path.join(root, 'eval2'), '--limit', '2', '--max-new-tokens', '2', '--device', 'cpu', '--weights-dtype', 'bf16']);
  t.equal(real.code, 0, real.stderr);
  t.match(real.stderr, /^weights: bf16 on cpu$/m, 'eval loads bf16 weights');
});
