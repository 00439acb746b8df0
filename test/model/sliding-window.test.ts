/**
 * A model whose sliding attention window is shorter than its context (Mistral-7B-v0.1: 4096 of
 * 32768) loads whenever the lengths it will run fit the window, and is refused, with why, beyond.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from '../../lib/model/generate';
import { loadModel } from '../../lib/model/load';
import { train } from '../../lib/train/train';
import { testSeed, hostRng } from '../helpers/random';
import { dataFile, sampleRecords, smallConfig, tempOut, tinyModelDir } from '../train/fixtures';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);
const quiet = { log: () => undefined, progress: { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream };

async function mistralDir(window: number): Promise<string> {
  const dir = await tinyModelDir(seed);
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  Object.assign(config, { architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: window });
  fs.writeFileSync(file, JSON.stringify(config));
  return dir;
}

t.test('training whose --max-length fits the window runs; beyond it is refused with the numbers', async (t) => {
  const window = 80 + rng.int(40);
  const model = await mistralDir(window);
  const data = dataFile(sampleRecords);
  const done = await train(smallConfig(model, data, tempOut(), { maxLength: window, maxSteps: 2 }), quiet);
  t.equal(done.steps, 2, `maxLength ${window} = the window: trained`);
  await t.rejects(train(smallConfig(model, data, tempOut(), { maxLength: window + 1, maxSteps: 1 }), quiet), {
    code: 'ERR_CONFIG',
    message: new RegExp(`config\\.json: sequences of up to ${window + 1} tokens are longer than the sliding attention window of ${window} tokens .*--max-length ${window}`),
  });
  await t.rejects(loadModel(model), { code: 'ERR_CONFIG', message: /pass maxSeqLen <= / }, 'no length given: refused as before');
});

t.test('generation loads the model and refuses only a prompt plus new tokens beyond the window', async (t) => {
  const window = 40 + rng.int(20);
  const { model, tokenizer } = await loadModel(await mistralDir(window), { maxSeqLen: 'per-generation' });
  t.equal(model.arch.slidingWindow, window);
  const prompt = 'abc';
  const promptTokens = tokenizer.encode(prompt, { addBos: true }).length;
  const fits = await generate(model, tokenizer, [prompt], { maxNewTokens: window - promptTokens });
  t.ok(fits[0].tokens.length <= window - promptTokens, 'a prompt plus new tokens that fill the window exactly runs');
  await t.rejects(generate(model, tokenizer, [prompt], { maxNewTokens: window - promptTokens + 1 }), {
    code: 'ERR_ARGUMENT',
    message: new RegExp(`a prompt of ${promptTokens} tokens plus ${window - promptTokens + 1} new tokens is ${window + 1} tokens, beyond the model's sliding attention window of ${window}.*--max-new-tokens to ${window - promptTokens}`),
  });
});
