/**
 * The training loop on CPU: the loss falls and a memorised answer comes back from generation;
 * k steps + resume + (N - k) steps equal N steps bit for bit; a non-finite loss stops the run before
 * the update and keeps the last good checkpoint.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from '../../lib/model/generate';
import { loadModel } from '../../lib/model/load';
import { loadAdapter } from '../../lib/model/adapter';
import { listCheckpoints, loadCheckpoint } from '../../lib/train/checkpoint';
import { train } from '../../lib/train/train';
import { tuluFormat } from '../../lib/data/templates';
import { testSeed } from '../helpers/random';
import { dataFile, sampleRecords, smallConfig, tempOut, tinyModelDir } from './fixtures';

const seed = testSeed();
t.comment(`seed ${seed}`);
const quiet = { log: () => undefined, progress: { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream };

t.test('the loss falls and a memorised answer is generated back', async (t) => {
  const model = await tinyModelDir(seed);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  const config = smallConfig(model, data, out, {
    mode: 'full',
    maxSteps: 80,
    optimizer: { lr: 3e-3 },
    schedule: { kind: 'constant', warmupSteps: 0 },
    batchSize: 6,
    seed: seed % 1000,
  });
  const outcome = await train(config, quiet);
  const first = outcome.losses.slice(0, 5).reduce((s, p) => s + p.loss, 0) / 5;
  const last = outcome.losses.slice(-5).reduce((s, p) => s + p.loss, 0) / 5;
  t.ok(last < first * 0.25, `loss fell from ${first.toFixed(3)} to ${last.toFixed(3)}`);
  t.ok(fs.existsSync(path.join(out, 'loss.svg')) && fs.readFileSync(path.join(out, 'loss.svg'), 'utf8').includes('<polyline'), 'loss curve written');
  const metrics = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.equal(metrics.length, 80, 'one metrics line per step');
  t.ok(metrics.every((m) => Number.isFinite(m.loss) && m.tokensPerSec > 0 && Number.isFinite(m.gradNorm)));
  t.equal(outcome.artifact, path.join(out, 'model'));
  const { model: trained, tokenizer } = await loadModel(outcome.artifact!);
  const prompt = tuluFormat().prompt({ instruction: 'Say the colour of the sky.', input: '', output: '' });
  const [answer] = await generate(trained, tokenizer, [prompt], { maxNewTokens: 12 });
  t.equal(answer.text, 'blue', 'the memorised response is generated back');
  t.equal(answer.finishReason, 'eos');
});

t.test('N steps equal k steps + resume + (N - k) steps, bit for bit (LoRA with dropout)', async (t) => {
  const model = await tinyModelDir(seed + 1);
  const data = dataFile(sampleRecords);
  const over = {
    mode: 'lora',
    lora: { r: 4, alpha: 8, dropout: 0.1, targets: ['q', 'v', 'down'], useRslora: false },
    maxSteps: 7,
    gradAccum: 2,
    batchSize: 1,
    optimizer: { lr: 1e-2 },
    seed: (seed % 997) + 1,
    saveEvery: 100,
  };
  const straight = tempOut();
  const full = await train(smallConfig(model, data, straight, over), quiet);
  const split = tempOut();
  const controller = new AbortController();
  const k = 3;
  const first = await train(smallConfig(model, data, split, over), {
    ...quiet,
    signal: controller.signal,
    onStep: (m) => m.step === k && controller.abort(),
  });
  t.equal(first.stopped, 'interrupted');
  t.equal(first.steps, k);
  t.same((await listCheckpoints(split)).map((c) => c.step), [k], 'the interrupt saved a checkpoint');
  const second = await train(smallConfig(model, data, split, over), { ...quiet, resume: split });
  t.equal(second.steps, 7);
  t.same(second.losses.map((l) => l.loss), full.losses.map((l) => l.loss), 'identical loss curve');
  const a = await loadAdapter(full.artifact!);
  const b = await loadAdapter(second.artifact!);
  t.same([...a.weights.keys()].sort(), [...b.weights.keys()].sort());
  for (const [name, tensor] of a.weights) {
    t.same(Buffer.from(await tensor.toBytes()), Buffer.from(await b.weights.get(name)!.toBytes()), `${name} identical`);
  }
});

t.test('a resume with different settings is refused', async (t) => {
  const model = await tinyModelDir(seed + 2);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  await train(smallConfig(model, data, out, { maxSteps: 2, mode: 'full' }), quiet);
  await t.rejects(train(smallConfig(model, data, out, { maxSteps: 4, mode: 'full', optimizer: { lr: 1 } }), { ...quiet, resume: out }), {
    code: 'ERR_CONFIG',
    message: /the run's settings differ: optimizer\.lr was 0\.0002, now 1;/,
  });
  await t.rejects(train(smallConfig(model, data, out, { maxSteps: 4, mode: 'full', maxLength: 32, lossMask: 'all' }), { ...quiet, resume: out }), {
    message: /maxLength was 64, now 32; lossMask was "response", now "all"/,
  });
  await t.rejects(train(smallConfig(model, data, out, { maxSteps: 1, mode: 'full' }), { ...quiet, resume: out }), {
    code: 'ERR_CONFIG',
    message: /the run's length differs: it has 2 steps \(at step 2\), now maxSteps\/epochs give 1; a resume can only extend a run/,
  });
});

t.test('a finished run extended with a larger maxSteps: the rate goes on from where it was and decays to the new end', async (t) => {
  const model = await tinyModelDir(seed + 4);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  const lr = 1e-3 * (1 + (seed % 7));
  const n = 4 + (seed % 3);
  const over = { mode: 'full', optimizer: { lr }, schedule: { kind: 'linear', warmupSteps: 1 }, saveEvery: 100 };
  const rates: number[] = [];
  const first = await train(smallConfig(model, data, out, { ...over, maxSteps: n }), { ...quiet, onStep: (m) => rates.push(m.lr) });
  t.equal(first.stopped, 'done');
  const last = rates[n - 1];
  t.ok(Math.abs(last - lr / (n - 1)) < 1e-12 * lr, `step ${n} of ${n}: lr ${last} (transformers' linear schedule, 1 warmup step)`);
  const more = n + 3 + (seed % 4);
  const extended = await train(smallConfig(model, data, out, { ...over, maxSteps: more }), { ...quiet, resume: out, onStep: (m) => rates.push(m.lr) });
  t.equal(extended.steps, more);
  t.equal(rates.length, more, 'only the new steps ran');
  for (let k = n + 1; k <= more; k++) {
    // linear from (n, last) to zero one step past the new end, as the first stretch reaches zero one step past its end
    const expected = last * (more + 1 - k) / (more + 1 - n);
    t.ok(Math.abs(rates[k - 1] - expected) <= 1e-12 * lr, `step ${k}: lr ${rates[k - 1]} = ${expected}`);
  }
  t.ok(rates[n] < last && rates[n] > last * 0.5, 'no jump at the extension');
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  t.same(summary.extensions, [{ atStep: n, fromTotalSteps: n, toTotalSteps: more, lr: last }], 'summary.json records the extension');
  t.equal(summary.totalSteps, more);
  // resuming the extended run again at its own length changes nothing; extending again stacks
  const again = await train(smallConfig(model, data, out, { ...over, maxSteps: more + 2 }), { ...quiet, resume: out, onStep: (m) => rates.push(m.lr) });
  t.equal(again.extensions.length, 2);
  t.ok(Math.abs(rates[more] - (rates[more - 1] * 2) / 3) <= 1e-12 * lr, 'the second extension continues from the first one\'s last rate');
});

t.test('a non-finite loss stops before the update and keeps the last good checkpoint', async (t) => {
  const model = await tinyModelDir(seed + 3);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  // An absurd learning rate blows the weights up after the first updates.
  const config = smallConfig(model, data, out, { mode: 'full', maxSteps: 50, optimizer: { lr: 1e30 }, schedule: { kind: 'constant' }, saveEvery: 1, maxGradNorm: 0 });
  const error = await train(config, quiet).then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  t.ok(error, 'training stopped');
  t.equal(error?.code, 'ERR_NON_FINITE');
  const step = Number(/step (\d+)/.exec(error?.message ?? '')?.[1]);
  t.ok(step > 1, `message names the step: ${error?.message}`);
  const saved = await listCheckpoints(out);
  t.equal(saved[saved.length - 1].step, step - 1, 'the last checkpoint is the last good step');
  const loaded = await loadCheckpoint(out, 'cpu');
  for (const tensor of loaded.trainable.values()) {
    t.ok((await tensor.toArray()).every(Number.isFinite), 'checkpointed weights are finite');
    break;
  }
});

t.test('bf16 weights train through f32 masters (full fine-tuning, CPU)', async (t) => {
  const model = await tinyModelDir(seed + 4);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  const outcome = await train(
    smallConfig(model, data, out, { mode: 'full', maxSteps: 12, weightsDtype: 'bf16', optimizer: { lr: 3e-3 }, schedule: { kind: 'constant' }, batchSize: 6, saveEvery: 12 }),
    quiet,
  );
  t.ok(outcome.losses.every((l) => Number.isFinite(l.loss)));
  t.ok(outcome.losses[11].loss < outcome.losses[0].loss, `loss fell: ${outcome.losses[0].loss.toFixed(3)} -> ${outcome.losses[11].loss.toFixed(3)}`);
  const saved = await loadCheckpoint(out, 'cpu');
  t.ok([...saved.trainable.values()].every((x) => x.dtype === 'f32'), 'the checkpoint holds f32 masters');
});

t.test('the presets\' optimizer steps hold exactly the paper\'s number of examples, packed or not', async (t) => {
  const { resolveConfig } = await import('../../lib/train/config');
  const v1 = resolveConfig([{ preset: 'sit-v1-lora', model: 'm', data: ['d'], out: 'o' }]);
  const naacl = resolveConfig([{ preset: 'sit-naacl-full', model: 'm', data: ['d'], out: 'o' }]);
  t.same([v1.stepExamples, v1.gradAccum, v1.packing], [64, 1, true]);
  t.same([naacl.stepExamples, naacl.gradAccum], [128, 1]);
  t.throws(() => resolveConfig([{ preset: 'sit-v1-lora', model: 'm', data: ['d'], out: 'o', gradAccum: 4 }]), {
    code: 'ERR_CONFIG',
    message: /gradAccum is 4 and stepExamples is 64: a step is either/,
  });
  // a v1 run on more records than one step: ceil(records / 64) steps an epoch, not one packed 32k-token step
  const records = Array.from({ length: 65 + (seed % 100) }, (_, i) => sampleRecords[i % sampleRecords.length]);
  const model = await tinyModelDir(seed + 5);
  const out = tempOut();
  const config = resolveConfig([{ preset: 'sit-v1-lora', model, data: [dataFile(records)], out, device: 'cpu', epochs: 1, valSize: 0, logEvery: 1000 }]);
  const outcome = await train(config, quiet);
  t.equal(outcome.steps, Math.ceil(records.length / 64), `${records.length} examples: ${Math.ceil(records.length / 64)} steps of 64 (the last fewer)`);
});
