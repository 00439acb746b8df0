import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { followedAnyFormat, parseOutput, scoreOutput } from '../../lib/demo/score';
import { scorePredictions } from '../../lib/eval/predictions';
import { resolveBench } from '../../lib/eval/benches';

const one = { steps: [{ label: 'Reverse', text: 'sun dog' }], gold: 'SUN DOG' };
const two = {
  steps: [
    { label: 'Translation into English', text: 'dog sun' },
    { label: 'Reverse', text: 'sun dog' },
  ],
  gold: 'SUN DOG',
};
const single = { steps: [], gold: 'sun dog' };

t.test('a sequential answer: exact match and following', async (t) => {
  t.same(scoreOutput(one, '1. Reverse:\nsun dog\nResult: SUN DOG'), { extracted: 'SUN DOG', correct: true, followed: true });
  t.same(scoreOutput(one, '1. Reverse:\nsun dog\nResult: SUN DOG\n'), { extracted: 'SUN DOG', correct: true, followed: true }, 'ends are trimmed');
  t.same(scoreOutput(one, '1. Reverse:\nsun dog\nResult: sun dog'), { extracted: 'sun dog', correct: false, followed: true }, 'exact match is case-sensitive; following does not judge the answer');
  t.same(scoreOutput(one, '1. Reverse:\nsun dog\nResult: SUN  DOG'), { extracted: 'SUN  DOG', correct: false, followed: true }, 'inner spacing counts');
  t.same(scoreOutput(two, '1. Translation into English:\ndog sun\n2. Reverse:\nsun dog\nResult: SUN DOG'), { extracted: 'SUN DOG', correct: true, followed: true });
});

t.test('following needs every requested step, in order, each intermediate exact', async (t) => {
  t.equal(scoreOutput(one, '1. Reverse:\nsun  dog\nResult: SUN DOG').followed, false, 'intermediate not exact');
  t.equal(scoreOutput(one, '1. Reverse:\nSun dog\nResult: SUN DOG').followed, false, 'intermediate case differs');
  t.equal(scoreOutput(one, '1. reverse:\nsun dog\nResult: SUN DOG').followed, false, 'label differs');
  t.equal(scoreOutput(one, '2. Reverse:\nsun dog\nResult: SUN DOG').followed, false, 'numbering wrong');
  t.equal(scoreOutput(one, 'Result: SUN DOG').followed, false, 'step missing');
  t.equal(scoreOutput(two, '1. Translation into English:\ndog sun\nResult: SUN DOG').followed, false, 'a step missing');
  t.equal(scoreOutput(two, '1. Reverse:\nsun dog\n2. Translation into English:\ndog sun\nResult: SUN DOG').followed, false, 'steps swapped');
  t.equal(scoreOutput(one, '1. Reverse:\nsun dog\n2. Reverse:\nsun dog\nResult: SUN DOG').followed, false, 'an extra step');
  t.equal(scoreOutput(one, 'ok\n1. Reverse:\nsun dog\nResult: SUN DOG').followed, false, 'steps must start the answer');
  t.equal(scoreOutput(one, '1. Reverse:\nsun dog\nso\nResult: SUN DOG').followed, false, 'the result must follow the steps directly');
  t.equal(scoreOutput(one, '1. Reverse:\nsun dog\nResult: ').followed, false, 'an empty result');
});

t.test('format-free following: each intermediate result in order, with any label or none', async (t) => {
  const steps = [
    { label: 'Reverse', text: 'sun dog' },
    { label: 'Uppercase', text: 'SUN DOG' },
  ];
  t.ok(followedAnyFormat(steps, '1. Reverse:\nsun dog\n2. Uppercase:\nSUN DOG\nResult: GOD NUS'), 'the labelled form');
  t.ok(followedAnyFormat(steps, 'sun dog\nSUN DOG\nGOD NUS'), 'unlabelled lines');
  t.ok(followedAnyFormat(steps, 'first sun dog, then SUN DOG, so: GOD NUS'), 'inline, other words around');
  t.ok(followedAnyFormat(steps, 'Reversed -> sun dog; upper -> SUN DOG; answer -> x'), 'other labels; a wrong answer still follows');
  t.notOk(followedAnyFormat(steps, 'SUN DOG\nsun dog\nGOD NUS'), 'out of order');
  t.notOk(followedAnyFormat(steps, 'sun dog\nGOD NUS'), 'a step missing');
  t.notOk(followedAnyFormat(steps, 'sun dog SUN DOG'), 'no answer after the last step');
  t.notOk(followedAnyFormat(steps, 'sun dog\nSUN DOG\nResult: '), 'a bare Result: marker is no answer');
  t.notOk(followedAnyFormat(steps, 'sun dogs\nSUN DOG\nx'), 'a step must be a whole span, not part of a word');
  t.notOk(followedAnyFormat(steps, 'Sun dog\nSUN DOG\nx'), 'each intermediate exact, case included');
  t.ok(followedAnyFormat(steps, 'sun dogs, sun dog\nSUN DOG\nx'), 'a later whole span counts');
  // the same intermediate twice needs two occurrences
  const twice = [
    { label: 'Sort', text: 'cat dog' },
    { label: 'Reverse', text: 'cat dog' },
  ];
  t.notOk(followedAnyFormat(twice, 'cat dog\nDOG CAT'));
  t.ok(followedAnyFormat(twice, 'cat dog\ncat dog\nDOG CAT'));
  t.ok(followedAnyFormat([], 'sun dog'), 'no step asked: any answer');
  t.notOk(followedAnyFormat([], ' \n'), 'no step asked, no answer');
  // a bare answer (what IT writes) follows nothing, even when it is the right final answer
  t.notOk(followedAnyFormat(one.steps, 'SUN DOG'));
  t.ok(followedAnyFormat(one.steps, 'sun dog\nSUN DOG'));
});

t.test('the extracted answer', async (t) => {
  t.same(scoreOutput(one, 'SUN DOG'), { extracted: 'SUN DOG', correct: true, followed: false }, 'a bare answer can be right without following');
  t.same(scoreOutput(one, '1. Reverse:\nsun dog\n'), { extracted: null, correct: false, followed: false }, 'steps but no result: nothing extracted');
  t.equal(scoreOutput(one, 'Result: x\nResult: SUN DOG').extracted, 'SUN DOG', 'the last marker wins');
  t.same(parseOutput('1. Reverse:\nsun dog\n2. Sort:\ndog sun\nResult: a'), {
    steps: [
      { number: 1, label: 'Reverse', text: 'sun dog' },
      { number: 2, label: 'Sort', text: 'dog sun' },
    ],
    rest: 'Result: a',
    extracted: 'a',
  });
});

t.test('a single-step answer follows when it is a bare (or Result:) answer without steps', async (t) => {
  t.same(scoreOutput(single, 'sun dog'), { extracted: 'sun dog', correct: true, followed: true });
  t.same(scoreOutput(single, ' sun dog\n'), { extracted: 'sun dog', correct: true, followed: true });
  t.same(scoreOutput(single, 'Result: sun dog'), { extracted: 'sun dog', correct: true, followed: true });
  t.same(scoreOutput(single, 'dog sun'), { extracted: 'dog sun', correct: false, followed: true });
  t.same(scoreOutput(single, ''), { extracted: '', correct: false, followed: false }, 'no answer');
  t.same(scoreOutput(single, '1. Reverse:\nsun dog\nResult: sun dog'), { extracted: 'sun dog', correct: true, followed: false }, 'a step nobody asked for');
});

t.test('seqtune eval --bench synthetic scores the demo items with the same rules', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'seqtune-synthetic-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const items = [
    { id: 'a', split: 'chain2', instruction: 'First reverse the word order, then uppercase the text:', input: 'dog sun', ...one },
    { id: 'b', split: 'single', instruction: 'Reverse the word order:', input: 'dog sun', ...single },
    { id: 'c', split: 'single', instruction: 'Sort the words:', input: 'sun dog', steps: [], gold: 'dog sun' },
  ];
  const data = path.join(dir, 'items.jsonl');
  await fs.writeFile(data, items.map((i) => `${JSON.stringify(i)}\n`).join(''));
  const predictions = path.join(dir, 'predictions.jsonl');
  const outputs = ['1. Reverse:\nsun dog\nResult: SUN DOG', 'sun dog', 'sun dog'];
  await fs.writeFile(predictions, items.map((i, k) => `${JSON.stringify({ id: i.id, output: outputs[k] })}\n`).join(''));
  const bench = resolveBench('synthetic');
  const read = await bench.read(data, {});
  t.equal(read.length, 3);
  t.same(bench.prompt(read[0]), { user: 'First reverse the word order, then uppercase the text: dog sun' });
  const { summary, records } = await scorePredictions({ bench: 'synthetic', dataFile: data, predictionsFile: predictions });
  t.same(records.map((r) => [r.id, r.correct, r.followed]), [
    ['a', true, true],
    ['b', true, true],
    ['c', false, true],
  ]);
  t.equal(summary.overall.accuracy, 2 / 3);
  t.equal(summary.groups.single.accuracy, 1 / 2);
  await fs.writeFile(data, '{"id":"x","split":"s","instruction":"i","input":"j","steps":"no","gold":"g"}\n');
  await t.rejects(bench.read(data, {}), /items\.jsonl:1: 'steps' must be an array/);
});
