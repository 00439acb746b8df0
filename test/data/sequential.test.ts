import t from 'tap';
import {
  FRAMES,
  multiStepThenAnswer,
  paraphraseStep,
  paraphraseThenAnswer,
  REPEAT_VERBALISATIONS,
  repeatStep,
  repeatThenAnswer,
  translateStep,
  translateThenAnswer,
} from '../../lib/data/sequential';
import { captionThenAnswer, vqaBaseline, VQA_BASELINE_TEMPLATES } from '../../lib/data/caption';
import { HostRng } from '../../lib/rng';
import { testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = new HostRng(seed);
const words = ['Summarize', 'the', 'Text', 'about', 'Paris', 'quickly', '"quoted"', 'naïve', '東京', '\n'];
const text = (n: number) => Array.from({ length: 1 + rng.int(n) }, () => words[rng.int(words.length)]).join(' ');

const record = { instruction: 'Check if the following Facebook post is appropriate', input: 'I think my boss is the meanest person ever.', output: 'no', idx: 3, system_prompt: '' };

t.test('repeat-then-answer is the docs/method.md §1.1b template exactly', async (t) => {
  t.same(repeatThenAnswer(record), {
    instruction: 'First repeat the input, then Check if the following Facebook post is appropriate',
    input: 'I think my boss is the meanest person ever.',
    output: 'I think my boss is the meanest person ever.\nno',
    idx: 3,
    system_prompt: '',
    strategy: 'repeat',
  });
  t.equal(repeatThenAnswer({ ...record, input: '' }), null, 'no input: not augmented');
  t.equal(repeatThenAnswer({ ...record, input: ' \n' }), null, 'whitespace input counts as none');
  for (let i = 0; i < 50; i++) {
    const r = { instruction: text(8), input: text(8), output: text(8) };
    const out = repeatThenAnswer(r)!;
    if (r.input.trim() === '') continue;
    t.equal(out.instruction, `First repeat the input, then ${r.instruction}`);
    t.equal(out.output, `${r.input}\n${r.output}`);
    t.equal(out.input, r.input);
  }
});

t.test('the verbalisation bank: every prefix yields a well-spaced instruction', async (t) => {
  t.equal(REPEAT_VERBALISATIONS.length, 7);
  for (const prefix of REPEAT_VERBALISATIONS) {
    const out = repeatThenAnswer(record, { prefix })!;
    t.ok(out.instruction.startsWith(prefix.trimEnd() + ' '), prefix);
    t.ok(out.instruction.endsWith(' ' + record.instruction));
    t.notMatch(out.instruction, /\S {2}\S/, 'one space between prefix and instruction');
  }
});

t.test('paraphrase- and translate-then-answer follow docs/method.md §1.1c and §1.1a', async (t) => {
  t.same(paraphraseThenAnswer(record, 'My boss is very mean, I feel.'), {
    ...record,
    instruction: 'First paraphrase below input, then check if the following facebook post is appropriate',
    output: 'Paraphrase:\nMy boss is very mean, I feel.\nResult: no',
    strategy: 'paraphrase',
  });
  t.equal(paraphraseThenAnswer(record, 'x', { label: 'Raraphrase' })!.output, 'Raraphrase:\nx\nResult: no', 'the paper typo on request');
  t.equal(paraphraseThenAnswer(record, '  '), null, 'empty paraphrase: not augmented');
  t.same(translateThenAnswer(record, 'Ich denke, mein Chef ist der gemeinste Mensch.', { lang: 'de' }), {
    ...record,
    instruction: 'First translate below input into English, then check if the following facebook post is appropriate',
    input: 'Ich denke, mein Chef ist der gemeinste Mensch.',
    output: 'Translation into English: \nI think my boss is the meanest person ever.\nResult: no',
    lang: 'de',
    strategy: 'translate',
  });
  t.equal(translateThenAnswer({ ...record, input: '' }, 'x'), null);
  t.equal(translateThenAnswer(record, ''), null);
  t.notOk('option' in paraphraseThenAnswer({ ...record, option: 'D' }, 'p')!, 'a seq-instruct option does not carry over');
});

t.test('multi-step: labelled numbered output, frames, custom steps', async (t) => {
  const steps = [repeatStep(record)!, paraphraseStep('My boss is mean.')];
  t.same(multiStepThenAnswer(record, steps), {
    ...record,
    instruction: 'First repeat the input, then paraphrase below input, then check if the following Facebook post is appropriate',
    output: '1. Repeat:\nI think my boss is the meanest person ever.\n2. Paraphrase:\nMy boss is mean.\nResult: no',
    strategy: 'repeat-paraphrase',
  });
  const frame = FRAMES[2];
  t.equal(multiStepThenAnswer(record, steps, { frame })!.instruction, 'To begin, repeat the input; next, paraphrase below input; finally, check if the following Facebook post is appropriate');
  const tr = translateStep(record, 'Mein Chef ist gemein.')!;
  const out = multiStepThenAnswer(record, [tr, paraphraseStep('p')], { answerLabel: 'Answer', strategy: 'custom' })!;
  t.equal(out.input, 'Mein Chef ist gemein.', 'a translate step shows the foreign input');
  t.equal(out.output, '1. Translation into English:\nI think my boss is the meanest person ever.\n2. Paraphrase:\np\nAnswer: no');
  t.equal(out.strategy, 'custom');
  // a caller's own step (the demo's synthetic tasks)
  const decode = { label: 'Decode', phrase: 'decode the input', text: 'plain text', shownInput: 'cvdmf' };
  t.equal(multiStepThenAnswer({ instruction: 'Count the words', input: 'plain text', output: '2' }, [decode])!.output, '1. Decode:\nplain text\nResult: 2');
  t.equal(multiStepThenAnswer(record, []), null);
  t.equal(repeatStep({ ...record, input: '' }), null);
  t.equal(translateStep({ ...record, input: '' }, 'x'), null);
  // the number of steps shows in the numbering
  for (let k = 1; k <= 5; k++) {
    const o = multiStepThenAnswer(record, Array.from({ length: k }, () => repeatStep(record)!))!;
    t.equal((o.output.match(/^\d+\. Repeat:$/gm) ?? []).length, k);
    t.equal((o.instruction.match(/repeat the input/g) ?? []).length, k);
  }
});

t.test('caption-then-answer and the baseline target the answer (docs/method.md §1.2 bug fixed)', async (t) => {
  const q = { question_id: 9, question: 'What color is the bus?', answer: ['red', 'dark red'], image: 'train2014/a.jpg' };
  t.same(captionThenAnswer(q, 'A red bus on a street.'), {
    instruction: 'First describe this image then answer the question: What color is the bus?',
    input: '',
    output: 'Description: A red bus on a street.\nAnswer: red',
    strategy: 'caption',
    extra: { image: 'train2014/a.jpg', question_id: 9 },
  });
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const b = vqaBaseline(q, rng);
    t.equal(b.output, 'Answer: red');
    seen.add(b.instruction);
  }
  t.same([...seen].sort(), VQA_BASELINE_TEMPLATES.map((x) => x.replace('{q}', q.question)).sort(), 'all four baseline templates are drawn');
});
