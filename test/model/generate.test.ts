/**
 * Generation with the KV cache against recomputation without it: greedy tokens of a batch of
 * prompts of different lengths equal, one by one, the argmax of a full forward over prompt +
 * generated text; batching does not change results; stop strings, EOS and sampling options behave.
 */
import t from 'tap';
import { generate } from '../../lib/model/generate';
import { LlamaModel } from '../../lib/model/llama';
import { HostRng } from '../../lib/rng';
import { sampleToken } from '../../lib/model/sampling';
import { scope } from '../../lib/tensor';
import type { TextTokenizer } from '../../lib/text-tokenizer';
import { hostRng, testSeed } from '../helpers/random';
import { deviceBatch, randomHostWeights, tinyArch, toTensors, weightShapes } from './tiny-model';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

/** Letters a..k are ids 1..11; id 0 is EOS; id 12 is BOS. */
const tokenizer: TextTokenizer = {
  vocabSize: 13,
  bosId: 12,
  eosId: 0,
  padId: null,
  encode: (text, options) => [...(options?.addBos ? [12] : []), ...[...text].map((c) => c.charCodeAt(0) - 96)],
  decode: (ids) => ids.filter((i) => i >= 1 && i <= 11).map((i) => String.fromCharCode(96 + i)).join(''),
};

const arch = tinyArch();
const model = new LlamaModel(arch, toTensors(randomHostWeights(arch, rng), weightShapes(arch), 'f32'));

/** The argmax next token after `ids`, by a full forward without any cache. */
async function nextByRecompute(ids: number[]): Promise<number> {
  return scope(async () => {
    const batch = deviceBatch({
      inputIds: Int32Array.from(ids),
      labels: new Int32Array(ids.length).fill(-100),
      positionIds: Int32Array.from(ids.keys()),
      cuSeqlens: Int32Array.from([0, ids.length]),
    });
    const logits = await model.logits(batch, Int32Array.from([ids.length - 1])).toArray();
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  });
}

const randomPrompt = (n: number) => Array.from({ length: n }, () => String.fromCharCode(97 + rng.int(11))).join('');

t.test('greedy generation with the KV cache equals recomputation, for a batch of uneven prompts', async (t) => {
  const prompts = [randomPrompt(1), randomPrompt(7), randomPrompt(3), randomPrompt(12)];
  const out = await generate(model, tokenizer, prompts, { maxNewTokens: 6 });
  for (let b = 0; b < prompts.length; b++) {
    const ids = tokenizer.encode(prompts[b], { addBos: true });
    const expected: number[] = [];
    for (let step = 0; step < 6; step++) {
      const next = await nextByRecompute([...ids, ...expected]);
      if (next === tokenizer.eosId) break;
      expected.push(next);
    }
    t.same(out[b].tokens, expected, `prompt ${b} (${prompts[b].length} chars)`);
    t.equal(out[b].finishReason, expected.length === 6 ? 'length' : 'eos');
  }
  const alone = await generate(model, tokenizer, [prompts[1]], { maxNewTokens: 6 });
  t.same(alone[0].tokens, out[1].tokens, 'batching does not change a sequence');
});

t.test('stop strings cut the text; onToken streams; sampling is seeded', async (t) => {
  const prompt = randomPrompt(5);
  const [full] = await generate(model, tokenizer, [prompt], { maxNewTokens: 8 });
  if (full.text.length >= 3) {
    const stop = full.text.slice(1, 3);
    const [cut] = await generate(model, tokenizer, [prompt], { maxNewTokens: 8, stop: [stop] });
    t.equal(cut.text, full.text.slice(0, full.text.indexOf(stop)));
    t.equal(cut.finishReason, 'stop');
  }
  const streamed: string[] = [];
  await generate(model, tokenizer, [prompt], { maxNewTokens: 4, onToken: (_b, _t, text) => streamed.push(text) });
  t.ok(streamed.every((s, i) => i === 0 || s.startsWith(streamed[i - 1])), 'streamed text only grows');
  const a = await generate(model, tokenizer, [prompt, prompt], { maxNewTokens: 6, temperature: 1.5, topK: 5, topP: 0.9, seed: 7 });
  const b = await generate(model, tokenizer, [prompt, prompt], { maxNewTokens: 6, temperature: 1.5, topK: 5, topP: 0.9, seed: 7 });
  t.same(a.map((g) => g.tokens), b.map((g) => g.tokens), 'same seed, same samples');
  const top1 = await generate(model, tokenizer, [prompt], { maxNewTokens: 6, temperature: 1, topK: 1, seed: 3 });
  t.same(top1[0].tokens, full.tokens.slice(0, top1[0].tokens.length), 'top-k 1 is greedy');
});

t.test('sampleToken rules', async (t) => {
  const logits = Float32Array.from([1, 3, 2, -1]);
  t.equal(sampleToken(logits, [], {}, new HostRng(1)), 1, 'greedy takes the argmax');
  t.equal(sampleToken(logits, [1], { repetitionPenalty: 2 }, new HostRng(1)), 2, 'penalty divides a positive logit (3 -> 1.5 < 2)');
  t.equal(sampleToken(Float32Array.from([-1, -3]), [0], { repetitionPenalty: 4 }, new HostRng(1)), 1, 'penalty multiplies a negative logit (-1 -> -4)');
  for (const at of [0, 1, 3]) {
    const row = Float32Array.from([0.5, 2, -1, 1]);
    row[at] = NaN;
    t.equal(sampleToken(row, [], {}, new HostRng(1)), -1, `greedy: a NaN at ${at} gives -1`);
    t.equal(sampleToken(row, [], { temperature: 1 }, new HostRng(1)), -1, `sampled: a NaN at ${at} gives -1`);
  }
  const counts = [0, 0, 0, 0];
  const draw = new HostRng(seed);
  for (let i = 0; i < 4000; i++) counts[sampleToken(logits, [], { temperature: 1, topP: 0.7 }, draw)]++;
  // softmax(1,3,2,-1) ≈ (.090, .665, .245, .004): top-p 0.7 keeps tokens 1 and 2 only
  t.equal(counts[0] + counts[3], 0, 'top-p drops the tail');
  const share = counts[1] / 4000;
  t.ok(Math.abs(share - 0.665 / 0.91) < 0.04, `renormalised share of token 1: ${share}`);
});
