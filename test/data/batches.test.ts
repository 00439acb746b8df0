import t from 'tap';
import { buildBatch, IGNORE_INDEX } from '../../lib/data/batch';
import { BatchLoader, planEpoch } from '../../lib/data/loader';
import { alpacaFormat, alpacaPrompt, chatTemplateFormat, tuluFormat } from '../../lib/data/templates';
import { encodePrompt, encodeRecord, tokenizeRecords, TokenizedDataset } from '../../lib/data/tokenize';
import { AlpacaRecord } from '../../lib/data/records';
import { isSeqtuneError } from '../../lib/errors';
import { HostRng } from '../../lib/rng';
import { testSeed } from '../helpers/random';
import { CharTokenizer } from './char-tokenizer';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = new HostRng(seed);
const tokenizer = new CharTokenizer();
const BOS = 1;
const EOS = 2;
const ids = (s: string) => Array.from(s, (c) => c.charCodeAt(0) + 3);

t.test('the first response label sits on the last prompt token (hand-built example)', async (t) => {
  // a chat template rendering "Q:" + user + "A:" and the response, to keep the example short
  const tiny = chatTemplateFormat((m, o) => m.map((x) => (x.role === 'user' ? `Q:${x.content}` : `A:${x.content}`)).join('') + (o.addGenerationPrompt ? 'A:' : ''));
  const record = { instruction: 'hi', input: '', output: 'yo' };
  const { dataset } = await tokenizeRecords([record], { tokenizer, format: tiny });
  t.same(Array.from(dataset.ids(0)), [BOS, ...ids('Q:hiA:'), ...ids('yo'), EOS]);
  const batch = buildBatch(dataset, [0]);
  // rows:        BOS  Q    :    h    i    A    ':'  y    o    EOS
  // labels:      -    -    -    -    -    -    y    o    EOS  -
  const y = ids('y')[0];
  const o = ids('o')[0];
  t.same(Array.from(batch.labels), [-100, -100, -100, -100, -100, -100, y, o, EOS, -100]);
  t.equal(batch.labels.indexOf(y), 6, "the first response label is on row 6, the prompt's last token ':'");
  t.equal(batch.inputIds[6], ids(':')[0]);
  t.same(Array.from(batch.positionIds), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.same(Array.from(batch.cuSeqlens), [0, 10]);
  t.equal(batch.numLabelTokens, 3);
  t.equal(batch.numDocuments, 1);
  // train on inputs: every row but the last predicts its next token
  const all = buildBatch((await tokenizeRecords([record], { tokenizer, format: tiny, trainOn: 'all' })).dataset, [0]);
  t.same(Array.from(all.labels), [...Array.from(all.inputIds).slice(1), -100]);
  t.same(encodePrompt(record, { tokenizer, format: tiny }), [BOS, ...ids('Q:hiA:')], 'the eval prompt is exactly the trained prompt');
});

t.test('Alpaca and Tulu examples: prompt masked, response + EOS trained', async (t) => {
  const record = { instruction: 'Add.', input: '1 2', output: '3' };
  const a = encodeRecord(record, { tokenizer, format: alpacaFormat() }).example!;
  const prompt = alpacaPrompt('Add.', '1 2');
  t.same(a.ids, [BOS, ...ids(prompt), ...ids('3'), EOS]);
  t.same(a.target, [...new Array(1 + prompt.length).fill(0), 1, 1]);
  const multi = {
    messages: [
      { role: 'user' as const, content: 'q1' },
      { role: 'assistant' as const, content: 'a1' },
      { role: 'user' as const, content: 'q2' },
      { role: 'assistant' as const, content: 'a2' },
    ],
  };
  const m = encodeRecord(multi, { tokenizer, format: tuluFormat() }).example!;
  const p1 = '<|user|>\nq1\n<|assistant|>\n';
  const p2 = '\n<|user|>\nq2\n<|assistant|>\n';
  t.same(m.ids, [BOS, ...ids(p1), ...ids('a1'), EOS, ...ids(p2), ...ids('a2'), EOS]);
  t.same(m.target, [0, ...new Array(p1.length).fill(0), 1, 1, 1, ...new Array(p2.length).fill(0), 1, 1, 1], 'every assistant turn and its EOS');
  t.same(encodePrompt(multi, { tokenizer, format: tuluFormat() }), [BOS, ...ids(p1), ...ids('a1'), EOS, ...ids(p2)], 'multi-turn prompt keeps the EOS after earlier turns');
  t.same(encodePrompt({ messages: multi.messages.slice(0, 3) }, { tokenizer, format: tuluFormat() }), [BOS, ...ids(p1), ...ids('a1'), EOS, ...ids(p2)]);
  const chat = chatTemplateFormat((msgs) => '<s>' + msgs.map((x) => x.content + (x.role === 'assistant' ? '</s>' : '')).join(''), { rendersBos: true, endOfTurn: '</s>' });
  const c = encodeRecord(record, { tokenizer, format: chat }).example!;
  t.same(c.ids, ids('<s>Add.\n\n1 23</s>'), 'a template that renders BOS and EOS gets neither id added');
});

t.test('over-length: truncate or drop, counted; no-target examples dropped', async (t) => {
  const records: AlpacaRecord[] = [
    { instruction: 'a', input: '', output: 'x'.repeat(50) },
    { instruction: 'b', input: '', output: 'short' },
    { instruction: 'c'.repeat(200), input: '', output: 'y' },
    { instruction: 'd', input: '', output: '' },
    { instruction: 'e', input: '', output: 'z', strategy: 'repeat' },
  ];
  const format = alpacaFormat();
  const promptLen = (r: AlpacaRecord) => 1 + alpacaPrompt(r.instruction, r.input).length;
  const max = promptLen(records[0]) + 20;
  const truncated = await tokenizeRecords(records, { tokenizer, format, maxLength: max });
  t.same(
    { ...truncated.report, dropped: truncated.report.dropped },
    { in: 5, augmented: 1, kept: 4, skipped: 1, truncated: 1, dropped: { tooLong: 0, noTarget: 1 } },
    'the long instruction leaves no response in the window: dropped as no-target; the empty output has its EOS only',
  );
  t.equal(truncated.dataset.length(0), max, 'truncated to maxLength');
  t.equal(truncated.dataset.ids(0)[max - 1], ids('x')[0], 'the start is kept, so the EOS is cut');
  const dropped = await tokenizeRecords(records, { tokenizer, format, maxLength: max, overLength: 'drop' });
  t.same([dropped.report.kept, dropped.report.dropped.tooLong, dropped.report.truncated], [3, 2, 0]);
  await t.rejects(tokenizeRecords(records, { tokenizer, format, maxLength: 1 }), /maxLength must be an integer >= 2/);
  t.throws(() => new TokenizedDataset(new Int32Array(3), new Uint8Array(2), Int32Array.from([0, 3])), /inconsistent/);
});

/** Random dataset: lengths 2..maxLen, random target flags after the first token. */
function randomDataset(n: number, maxLen: number): TokenizedDataset {
  const offsets = [0];
  const tokens: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < n; i++) {
    const len = 2 + rng.int(maxLen - 1);
    for (let k = 0; k < len; k++) {
      tokens.push(1000 * i + k);
      targets.push(k > 0 && rng.uniform() < 0.6 ? 1 : 0);
    }
    offsets.push(tokens.length);
  }
  return new TokenizedDataset(Int32Array.from(tokens), Uint8Array.from(targets), Int32Array.from(offsets));
}

t.test('packed batches: every example once per epoch, budget kept, labels by the shift rule', async (t) => {
  for (const mode of ['pack', 'bucket'] as const) {
    const ds = randomDataset(300 + rng.int(200), 64);
    const budget = 64 + rng.int(200);
    const loader = new BatchLoader(ds, { tokenBudget: budget, mode, seed: rng.int(1 << 30), window: 50 + rng.int(100) });
    const seen = new Array(ds.size).fill(0);
    let tokens = 0;
    for (const batch of loader.epochBatches()) {
      const T = batch.inputIds.length;
      t.ok(T <= budget, `${mode}: ${T} <= ${budget}`) || t.bailout();
      t.equal(batch.cuSeqlens[0], 0);
      t.equal(batch.cuSeqlens[batch.cuSeqlens.length - 1], T);
      let labelled = 0;
      let maxLen = 0;
      for (let d = 0; d < batch.numDocuments; d++) {
        const [s, e] = [batch.cuSeqlens[d], batch.cuSeqlens[d + 1]];
        const ex = Math.floor(batch.inputIds[s] / 1000);
        seen[ex]++;
        maxLen = Math.max(maxLen, e - s);
        const want = Array.from(ds.ids(ex));
        t.same(Array.from(batch.inputIds.subarray(s, e)), want);
        const target = ds.target(ex);
        for (let k = 0; k < e - s; k++) {
          t.equal(batch.positionIds[s + k], k);
          const expect = k + 1 < e - s && target[k + 1] ? want[k + 1] : IGNORE_INDEX;
          if (batch.labels[s + k] !== expect) t.fail(`label at doc ${ex} token ${k}`);
          if (expect !== IGNORE_INDEX) labelled++;
        }
      }
      if (mode === 'bucket') t.ok(batch.numDocuments * maxLen <= budget, 'bucket: count × longest within budget');
      t.equal(batch.numLabelTokens, labelled);
      tokens += T;
    }
    t.ok(seen.every((c) => c === 1), `${mode}: each example exactly once`);
    t.equal(tokens, ds.tokens.length);
  }
});

t.test('packing fills rows; epochs reshuffle; seeds determine the plan', async (t) => {
  const ds = randomDataset(1000, 100);
  const lengths = Int32Array.from({ length: ds.size }, (_, i) => ds.length(i));
  const options = { tokenBudget: 1024, seed: 5 };
  const e0 = planEpoch(lengths, options, 0);
  const fill = ds.tokens.length / (e0.length * 1024);
  t.ok(fill > 0.9, `first-fit decreasing fills rows: ${fill.toFixed(3)}`);
  t.same(planEpoch(lengths, options, 0), e0, 'deterministic');
  t.notSame(planEpoch(lengths, options, 1), e0, 'another epoch, another order');
  t.notSame(planEpoch(lengths, { ...options, seed: 6 }, 0), e0, 'another seed, another order');
});

t.test('state saved mid-epoch restores the exact continuation, across epochs', async (t) => {
  const ds = randomDataset(200, 40);
  const options = { tokenBudget: 128, seed: rng.int(1 << 30), padToBudget: true, padId: 0 };
  const reference = new BatchLoader(ds, options);
  const stream = Array.from({ length: reference.batchesInEpoch * 2 + 5 }, () => reference.next());
  const cut = 1 + rng.int(stream.length - 2);
  const a = new BatchLoader(ds, options);
  for (let i = 0; i < cut; i++) a.next();
  const state = JSON.parse(JSON.stringify(a.state()));
  const b = new BatchLoader(ds, options, state);
  for (let i = cut; i < stream.length; i++) {
    const got = b.next();
    t.same(Array.from(got.inputIds), Array.from(stream[i].inputIds), `batch ${i} after restoring at ${cut}`);
    t.same(Array.from(got.labels), Array.from(stream[i].labels));
  }
  t.ok(stream.every((x) => x.inputIds.length === 128), 'padded to the budget');
  for (const batch of stream) {
    const docs = batch.numDocuments;
    const real = batch.cuSeqlens[docs];
    t.equal(batch.cuSeqlens.length, docs + (real < 128 ? 2 : 1), 'padding, when any, is one extra segment');
    t.ok(Array.from(batch.labels.subarray(real)).every((l) => l === IGNORE_INDEX), 'no labels on padding');
    t.ok(Array.from(batch.positionIds.subarray(real)).every((p, i) => p === i), 'padding positions restart at 0');
  }
  let epochs = 0;
  const c = new BatchLoader(ds, options);
  for (let e = 0; e < 3; e++) {
    let n = 0;
    for (const _ of c.epochBatches()) n++;
    t.equal(n, c.batchesInEpoch);
    epochs = c.epoch;
  }
  t.equal(epochs, 2);
});

t.test('steps of a fixed number of examples: packing never changes how many examples a step holds', async (t) => {
  for (const mode of ['pack', 'bucket'] as const) {
    const ds = randomDataset(150 + rng.int(150), 64);
    const stepExamples = 5 + rng.int(40);
    const budget = 64 + rng.int(200);
    const options = { tokenBudget: budget, mode, seed: rng.int(1 << 30), stepExamples };
    const loader = new BatchLoader(ds, options);
    const steps = Math.ceil(ds.size / stepExamples);
    t.equal(loader.stepsInEpoch, steps, `${mode}: ${ds.size} examples make ${steps} steps of ${stepExamples}`);
    for (let epoch = 0; epoch < 2; epoch++) {
      const seen = new Array(ds.size).fill(0);
      for (let k = 0; k < steps; k++) {
        const micro = loader.nextStep();
        const examples = micro.reduce((n, b) => n + b.numDocuments, 0);
        t.equal(examples, k < steps - 1 ? stepExamples : ds.size - stepExamples * (steps - 1), `${mode} epoch ${epoch} step ${k}: exactly the step's examples`);
        for (const b of micro) {
          if (b.inputIds.length > budget) t.fail(`micro-batch of ${b.inputIds.length} tokens over ${budget}`);
          for (let d = 0; d < b.numDocuments; d++) seen[Math.floor(b.inputIds[b.cuSeqlens[d]] / 1000)]++;
        }
      }
      t.ok(seen.every((c) => c === 1), `${mode} epoch ${epoch}: every example once`);
    }
    // a state taken between steps restores the same steps
    const a = new BatchLoader(ds, options);
    a.nextStep();
    const b = new BatchLoader(ds, options, JSON.parse(JSON.stringify(a.state())));
    t.same(b.nextStep().map((x) => Array.from(x.inputIds)), a.nextStep().map((x) => Array.from(x.inputIds)), 'resumes at the next step');
  }
});

t.test('loader errors', async (t) => {
  const ds = randomDataset(10, 30);
  const check = (fn: () => unknown, code: string, pattern: RegExp) => {
    try {
      fn();
      t.fail(`expected ${pattern}`);
    } catch (error) {
      t.ok(isSeqtuneError(error) && error.code === code, `${code}: ${(error as Error).message}`);
      t.match((error as Error).message, pattern);
    }
  };
  check(() => new BatchLoader(ds, { tokenBudget: 0 }), 'ERR_ARGUMENT', /tokenBudget/);
  check(() => new BatchLoader(ds, { tokenBudget: 100, window: 0 }), 'ERR_ARGUMENT', /window/);
  check(() => new BatchLoader(ds, { tokenBudget: 5 }), 'ERR_CONFIG', /over the token budget/);
  const state = new BatchLoader(ds, { tokenBudget: 100, seed: 1 }).state();
  check(() => new BatchLoader(ds, { tokenBudget: 100, seed: 2 }, state), 'ERR_CONFIG', /loader state is for seed 1/);
  check(() => new BatchLoader(randomDataset(11, 30), { tokenBudget: 100, seed: 1 }, state), 'ERR_CONFIG', /11 examples/);
  check(() => new BatchLoader(ds, { tokenBudget: 100, seed: 1 }, { ...state, batch: 10_000 }), 'ERR_CONFIG', /outside epoch/);
  check(() => new BatchLoader(new TokenizedDataset(new Int32Array(0), new Uint8Array(0), Int32Array.from([0])), { tokenBudget: 10 }), 'ERR_DATA', /no examples/);
  check(() => buildBatch(ds, [0, 1, 2], { padTo: 2 }), 'ERR_ARGUMENT', /does not fit/);
});
