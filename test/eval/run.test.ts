/**
 * runEval with fake generators: batching, the files it writes, resuming after an interruption
 * (including a half-written last line), refusing to mix runs, and its results as predictions.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { benchNames, EvalItem, registerBench } from '../../lib/eval/bench';
import { resolveBench } from '../../lib/eval/benches';
import { scorePredictions } from '../../lib/eval/predictions';
import { runEval } from '../../lib/eval/run';
import { FakeGenerator, questionIndex, writeXquad, xquadOutput } from './fixtures';

const EXPECTED = { n: 7, empty: 0, accuracy: 5 / 7, followRate: 5 / 7, correctAndFollowedRate: 3 / 7 };

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

t.test('generates in batches, scores, and writes results.jsonl and summary.json', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const gen = new FakeGenerator();
  const progress: number[] = [];
  const out = join(dir, 'run');
  const { summary, resumed, generated } = await runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out, batchSize: 3, onProgress: (d) => progress.push(d) });
  t.same(gen.calls.map((c) => c.prompts.length), [3, 3, 1]);
  t.same(gen.calls[0].options, { maxNewTokens: 512 }, "the bench's protocol budget");
  t.equal(gen.prompts[0], '<|user|>\nFirst, translate the input into English. Input: Context: c0\nQuestion: q0\n<|assistant|>\n', 'tulu without a system block');
  t.same(progress, [0, 3, 6, 7]);
  t.same([resumed, generated], [0, 7]);
  t.same(summary.overall, EXPECTED);
  t.same(summary.groups.vi, EXPECTED);
  t.same(summary.averages.trans, { members: ['vi'], missing: ['ar', 'el', 'hi', 'th', 'tr'], accuracy: 5 / 7, followRate: 5 / 7, correctAndFollowedRate: 3 / 7 });
  t.same(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), summary);
  const rows = lines(join(out, 'results.jsonl'));
  t.equal(rows.length, 7);
  t.same(rows[2], { id: '2', group: 'vi', prompt: gen.prompts[2], output: 'Answer: nobody', extracted: 'nobody', correct: false, followed: true, gold: '308' });
  t.same(rows[1], { id: '1', group: 'vi', prompt: gen.prompts[1], output: 'Carolina', extracted: 'carolina', correct: true, followed: false, gold: 'Carolina' });
});

t.test('an interrupted run resumes without redoing finished items', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const out = join(dir, 'run');
  const crashing = new FakeGenerator(undefined, 2);
  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: crashing, outDir: out, batchSize: 2 }), /simulated crash/);
  t.equal(lines(join(out, 'results.jsonl')).length, 2, 'the first batch was kept');

  // a crash in the middle of a write leaves half a line
  await appendFile(join(out, 'results.jsonl'), '{"id": "2", "group": "vi", "prompt": "<|us');
  const gen = new FakeGenerator();
  const { summary, resumed, generated } = await runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out, batchSize: 2 });
  t.same(gen.prompts.map(questionIndex), [2, 3, 4, 5, 6], 'only unfinished items are generated');
  t.same([resumed, generated], [2, 5]);
  t.same(summary.overall, EXPECTED, 'same scores as an uninterrupted run');
  const rows = lines(join(out, 'results.jsonl'));
  t.same(rows.map((r) => r.id), ['0', '1', '2', '3', '4', '5', '6']);

  const again = new FakeGenerator();
  const third = await runEval({ bench: 'xquad', dataFile: data, generator: again, outDir: out });
  t.equal(again.calls.length, 0, 'a finished run generates nothing');
  t.same(third.summary, summary);
});

t.test('a limit evaluates a prefix; raising it resumes from there', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const out = join(dir, 'run');
  const first = await runEval({ bench: 'xquad', dataFile: data, generator: new FakeGenerator(), outDir: out, limit: 3 });
  t.same(first.summary.overall, { n: 3, empty: 0, accuracy: 2 / 3, followRate: 2 / 3, correctAndFollowedRate: 1 / 3 });
  const gen = new FakeGenerator();
  const full = await runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out });
  t.same(gen.prompts.map(questionIndex), [3, 4, 5, 6]);
  t.same(full.summary.overall, EXPECTED);
  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out, limit: 0 }), { code: 'ERR_ARGUMENT', message: /limit must be a positive integer/ });
});

t.test('a results file that does not belong to this run is refused', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const out = join(dir, 'run');
  await runEval({ bench: 'xquad', dataFile: data, generator: new FakeGenerator(), outDir: out, limit: 4 });
  const file = join(out, 'results.jsonl');
  const good = readFileSync(file, 'utf8');
  const gen = new FakeGenerator();

  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out, template: 'raw' }), { code: 'ERR_ARGUMENT', message: /other settings/ });
  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out, maxNewTokens: 64 }), { code: 'ERR_ARGUMENT', message: /other settings/ });

  const rows = good.split('\n');
  await writeFile(file, [rows[0], '{"id": "1", "oops"', rows[2], ''].join('\n'));
  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out }), { code: 'ERR_DATA', message: /results\.jsonl:2: invalid JSON/ });
  await writeFile(file, [rows[0], rows[1], rows[0], ''].join('\n'));
  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out }), { code: 'ERR_DATA', message: /results\.jsonl:3: duplicate id '0' \(first on line 1\)/ });
  await writeFile(file, [rows[0], rows[1].replace('"id":"1"', '"id":"99"'), ''].join('\n'));
  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out }), { code: 'ERR_DATA', message: /results\.jsonl:2: id '99' is not an item/ });
  await writeFile(file, [rows[0], rows[1].replace('"correct":true', '"correct":"yes"'), ''].join('\n'));
  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out }), { code: 'ERR_DATA', message: /results\.jsonl:2: field 'correct' must be a boolean or null/ });

  await writeFile(file, good);
  await writeFile(data, readFileSync(data, 'utf8').replace(/translate the input/g, 'translate the text'));
  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: gen, outDir: out }), { code: 'ERR_DATA', message: /results\.jsonl:1: item '0' was generated from a different prompt/ });
  t.equal(gen.calls.length, 0, 'nothing was generated by the refused runs');
});

t.test('a generator that returns the wrong number of outputs is an error', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const broken = { generate: async (prompts: string[]) => prompts.slice(1) };
  await t.rejects(runEval({ bench: 'xquad', dataFile: data, generator: broken, outDir: join(dir, 'run'), batchSize: 2 }), { code: 'ERR_INTERNAL', message: /returned 1 values for 2 prompts/ });
});

t.test('results.jsonl is a valid predictions file', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const out = join(dir, 'run');
  const { summary } = await runEval({ bench: 'xquad', dataFile: data, generator: new FakeGenerator(), outDir: out });
  const scored = await scorePredictions({ bench: 'xquad', dataFile: data, predictionsFile: join(out, 'results.jsonl'), outDir: join(dir, 'rescored') });
  t.same(scored.summary, summary);
  t.same(lines(join(dir, 'rescored/results.jsonl')), lines(join(out, 'results.jsonl')), 'prompts carried over');
});

t.test('any scorer plugs in through registerBench (the synthetic hook)', async (t) => {
  const dir = t.testdir({ 'toy.jsonl': '{"a": 2, "b": 3}\n{"a": 5, "b": 7}\n{"a": 1, "b": 1}\n' });
  type Toy = EvalItem & { a: number; b: number };
  registerBench<Toy>('toy-sum', {
    description: 'add two numbers',
    read: async (file) =>
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l, i) => ({ ...(JSON.parse(l) as { a: number; b: number }), id: String(i), file, line: i + 1, group: '', gold: null })),
    prompt: (item) => ({ user: `${item.a}+${item.b}=` }),
    score: (item, output) => ({ extracted: output, correct: Number(output) === item.a + item.b, followed: null }),
    maxNewTokens: 4,
  });
  t.ok(benchNames().includes('toy-sum'));
  t.throws(() => registerBench('toy-sum', resolveBench('toy-sum')), { code: 'ERR_ARGUMENT', message: /already registered/ });
  t.throws(() => registerBench('Bad Name', resolveBench('toy-sum')), { code: 'ERR_ARGUMENT' });
  // the fake adds correctly except when both numbers are 1
  const gen = new FakeGenerator((p) => {
    const [a, b] = p.match(/\d+/g)!.map(Number);
    return a === 1 && b === 1 ? '3' : String(a + b);
  });
  const { summary } = await runEval({ bench: 'toy-sum', dataFile: join(dir, 'toy.jsonl'), generator: gen, outDir: join(dir, 'run'), template: 'raw' });
  t.same(gen.prompts, ['2+3=', '5+7=', '1+1=']);
  t.same(gen.calls[0].options, { maxNewTokens: 4 });
  t.equal(summary.overall.accuracy, 2 / 3);

  const demo = resolve(__dirname, '../../lib/demo/synthetic-bench.ts');
  if (existsSync(demo)) t.ok(resolveBench('synthetic').description, 'the demo module provides the synthetic bench');
  else t.throws(() => resolveBench('synthetic'), { code: 'ERR_ARGUMENT', message: /'synthetic' bench is not available in this build/ });
  t.throws(() => resolveBench('nope'), { code: 'ERR_ARGUMENT', message: /unknown bench 'nope'/ });
  await t.rejects(runEval({ bench: 'xquad', dataFile: join(dir, 'toy.jsonl'), generator: gen, outDir: join(dir, 'x') }), { code: 'ERR_ARGUMENT' });
});

t.test('a missing data file is an I/O error', async (t) => {
  const dir = t.testdir({});
  await t.rejects(runEval({ bench: 'gsm8k', dataFile: join(dir, 'none.jsonl'), generator: new FakeGenerator(), outDir: join(dir, 'run') }), { code: 'ERR_IO', message: /cannot read/ });
  t.notOk(existsSync(join(dir, 'run')), 'nothing is written before the data is read');
});

t.test('every item output is used verbatim when scoring the interrupted+resumed run', async (t) => {
  // a regression guard for the resume path: outputs read back must be the ones written
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const out = join(dir, 'run');
  await runEval({ bench: 'xquad', dataFile: data, generator: new FakeGenerator(undefined, 3), outDir: out, batchSize: 1 }).catch(() => undefined);
  await runEval({ bench: 'xquad', dataFile: data, generator: new FakeGenerator(), outDir: out, batchSize: 1 });
  t.same(lines(join(out, 'results.jsonl')).map((r) => r.output), [0, 1, 2, 3, 4, 5, 6].map(xquadOutput));
});
