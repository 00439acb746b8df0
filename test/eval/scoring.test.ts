/**
 * Every scoring rule on hand-made outputs, with the expected verdict written out by hand.
 */
import t from 'tap';
import { scoreCsqa, parseChoice } from '../../lib/eval/benches/csqa';
import { mgsmBench, MgsmItem } from '../../lib/eval/benches/mgsm';
import { scoreXquad } from '../../lib/eval/benches/xquad';
import { extractLastNumber, numbersMatch, parseGoldNumber } from '../../lib/eval/numbers';
import { formatSummary, summarize } from '../../lib/eval/summary';
import { renderPrompt } from '../../lib/eval/template';

t.test('XQuAD: markers decide follow, the text after the marker is matched both ways', async (t) => {
  const cases: [string, string, { extracted: string | null; correct: boolean; followed: boolean }][] = [
    ['Translation into English: Who won?\nResult: Denver Broncos', 'Denver Broncos', { extracted: 'denver broncos', correct: true, followed: true }],
    // gold inside the answer, and answer inside the gold
    ['Answer: the Broncos won', 'Broncos', { extracted: 'the broncos won', correct: true, followed: true }],
    ['Answer: Broncos', 'Denver Broncos', { extracted: 'broncos', correct: true, followed: true }],
    ['ANSWER: DENVER', 'Denver', { extracted: 'denver', correct: true, followed: true }],
    ['The answer is 136.', '136', { extracted: '136.', correct: true, followed: true }],
    ['The result is four', 'four', { extracted: 'four', correct: true, followed: true }],
    ['Result: Carolina', 'Denver', { extracted: 'carolina', correct: false, followed: true }],
    // "result:" is tried before "answer is", wherever they stand
    ['The answer is 5. Result: 7', '7', { extracted: '7', correct: true, followed: true }],
    ['The answer is 5. Result: 7', '5', { extracted: '7', correct: false, followed: true }],
    // without a marker: accuracy on the whole output, not followed
    ['Denver Broncos', 'Denver Broncos', { extracted: 'denver broncos', correct: true, followed: false }],
    ["I don't know", '308', { extracted: "i don't know", correct: false, followed: false }],
    // the fix: an empty answer never matches (the authors' `pred in gold` accepted it)
    ['Answer:', '308', { extracted: null, correct: false, followed: true }],
    ['Answer:   \n', '308', { extracted: null, correct: false, followed: true }],
    ['', '308', { extracted: null, correct: false, followed: false }],
    ['  \n ', '308', { extracted: null, correct: false, followed: false }],
  ];
  for (const [output, gold, expected] of cases) t.same(scoreXquad(output, gold), expected, JSON.stringify(output));
});

t.test('numbers: the last number, with commas, signs, decimals and a final period', async (t) => {
  const cases: [string, string | null, number | null][] = [
    ['The answer is 18.', '18', 18],
    ['1,234,567 apples', '1234567', 1234567],
    ['It costs $1,000.50 in total', '1000.50', 1000.5],
    ['He had 5 apples and ate 2, so 3 remain', '3', 3],
    ['-10', '-10', -10],
    ['The answer is -3.', '-3', -3],
    ['So 10-5 is left', '5', 5],
    ['x-5', '5', 5],
    ['(\u22124)', '-4', -4],
    ['= +7', '+7', 7],
    ['about .5 of it', '.5', 0.5],
    ['pi is 3.14.', '3.14', 3.14],
    ['5 + 6 = 11. The Answer is: 11', '11', 11],
    ['no numbers here', null, null],
    ['', null, null],
  ];
  for (const [output, text, value] of cases) {
    const got = extractLastNumber(output);
    t.same(got && { text: got.text, value: got.value }, text === null ? null : { text, value }, JSON.stringify(output));
  }
  t.equal(parseGoldNumber('1,600'), 1600);
  t.equal(parseGoldNumber(' -10 '), -10);
  t.equal(parseGoldNumber('0.5'), 0.5);
  t.equal(parseGoldNumber('abc'), null);
  t.equal(parseGoldNumber('5 apples'), null);
  t.equal(parseGoldNumber(''), null);
  t.ok(numbersMatch(18.0, 18));
  t.ok(numbersMatch(0.1 + 0.2, 0.3));
  t.notOk(numbersMatch(18, 19));
  t.notOk(numbersMatch(3.5, 35), 'the authors stripped punctuation so 3.5 matched 35; values do not');
});

t.test('MGSM and GSM8K scoring: exact match of the last number', async (t) => {
  const item = { id: '0', file: 'f', line: 1, group: 'de', gold: '11', lang: 'de', question: 'q', answerNumber: 11, mode: 'cot-en', demos: { text: '' } } as MgsmItem;
  t.same(mgsmBench.score(item, 'Roger has 5 + 6 = 11 balls. The Answer is: 11'), { extracted: '11', correct: true, followed: null });
  t.same(mgsmBench.score(item, 'The Answer is: 11.0'), { extracted: '11.0', correct: true, followed: null });
  t.same(mgsmBench.score(item, 'The Answer is: 11.5'), { extracted: '11.5', correct: false, followed: null });
  t.same(mgsmBench.score(item, 'It is 11, or maybe 12'), { extracted: '12', correct: false, followed: null });
  t.same(mgsmBench.score(item, ''), { extracted: null, correct: false, followed: null });
});

t.test('CSQA: the choice letter after the last marker, else a lone letter, else a unique choice text', async (t) => {
  const question = 'A revolving door is convenient for two direction travel, but it also serves as a security measure at a what?';
  const choices = ['bank', 'library', 'department store', 'mall', 'new york'].map((text, i) => ({ label: 'ABCDE'[i], text }));
  const item = { gold: 'A', question, choices };
  const repeat = `Question: ${question}\nChoices: A:bank, B:library, C:department store, D:mall, E:new york\n`;
  const cases: [string, string | null][] = [
    [`${repeat}Answer: A`, 'A'],
    ['Answer: (B)', 'B'],
    ['Answer: **C**', 'C'],
    ['The correct choice is D.', 'D'],
    ['Answer: A bank', 'A'],
    ['Answer: bank', 'A'],
    ['Answer: department store', 'C'],
    ['Answer: library or mall', null],
    [`${repeat}E`, 'E'],
    ['B', 'B'],
    ['answer: b', null],
    ["I think it's E: new york", 'E'],
    ['Answer: A\nActually, the correct answer is C', 'C'],
    ["I don't know", null],
    ['', null],
  ];
  for (const [output, letter] of cases) t.equal(parseChoice(output, choices), letter, JSON.stringify(output));
  t.same(scoreCsqa(`${repeat}Answer: A`, item), { extracted: 'A', correct: true, followed: true });
  t.same(scoreCsqa('Answer: C', item), { extracted: 'C', correct: false, followed: false });
  t.same(scoreCsqa(`question: ${question.toUpperCase().replace(/ /g, '  \n')}\nResult: A`, item), { extracted: 'A', correct: true, followed: true }, 'repeat check ignores case and whitespace');
  t.same(scoreCsqa('', item), { extracted: null, correct: false, followed: false });
});

t.test('summaries: per group, overall, and macro-averages that name missing members', async (t) => {
  const row = (group: string, correct: boolean | null, followed: boolean | null, output = 'x') => ({ group, output, score: { extracted: null, correct, followed } });
  const rows = [row('en', true, true), row('en', false, true, ' '), row('de', true, false), row('ar', false, null, '')];
  const s = summarize('xquad', 'data', rows, { base: ['en', 'de', 'es', 'ru', 'zh'], trans: ['ar', 'el', 'hi', 'th', 'tr', 'vi'], none: ['xx'] });
  t.same(s.groups.en, { n: 2, empty: 1, accuracy: 0.5, followRate: 1, correctAndFollowedRate: 0.5 });
  t.same(s.groups.de, { n: 1, empty: 0, accuracy: 1, followRate: 0, correctAndFollowedRate: 0 });
  t.same(s.groups.ar, { n: 1, empty: 1, accuracy: 0, followRate: null, correctAndFollowedRate: null });
  t.same(s.overall, { n: 4, empty: 2, accuracy: 0.5, followRate: 2 / 3, correctAndFollowedRate: 1 / 3 });
  t.same(s.averages.base, { members: ['en', 'de'], missing: ['es', 'ru', 'zh'], accuracy: 0.75, followRate: 0.5, correctAndFollowedRate: 0.25 });
  t.same(s.averages.trans, { members: ['ar'], missing: ['el', 'hi', 'th', 'tr', 'vi'], accuracy: 0, followRate: null, correctAndFollowedRate: null });
  t.notOk('none' in s.averages, 'an average with no member present is left out');
  t.match(formatSummary(s), /avg base: accuracy 75\.0, follow 50\.0.*\(missing: es, ru, zh\)/);

  t.same(Object.keys(s.groups), ['en', 'de', 'ar'], 'groups in the order the averages list them');
  const depths = summarize('seqeval', 'd', ['depth-4', 'depth-10', 'depth-1', 'depth-2'].map((g) => row(g, null, null)));
  t.same(Object.keys(depths.groups), ['depth-1', 'depth-2', 'depth-4', 'depth-10'], 'other groups sorted naturally');
  const single = summarize('gsm8k', 'd', [row('', true, null), row('', false, null)]);
  t.same(single.groups, {}, 'an unnamed single group is only the overall line');
  t.equal(single.overall.accuracy, 0.5);
});

t.test('eval templates render the user turn and the assistant prefix', async (t) => {
  const parts = { user: 'Q?', assistantPrefix: ' Answer:' };
  t.equal(renderPrompt(parts, 'tulu'), '<|user|>\nQ?\n<|assistant|>\n Answer:');
  t.equal(renderPrompt(parts, 'tulu-system'), '<|system|>\n\n<|user|>\nQ?\n<|assistant|>\n Answer:');
  t.equal(renderPrompt({ user: 'Q?' }, 'alpaca'), 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nQ?\n\n### Response:\n');
  t.equal(renderPrompt(parts, 'raw'), 'Q? Answer:');
  t.equal(renderPrompt({ user: '  Q?\n' }, 'tulu'), '<|user|>\nQ?\n<|assistant|>\n', 'the shared Tulu format strips turn contents, as in training');
});
