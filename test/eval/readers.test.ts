/**
 * Readers on the real eval files in ../shared/data, checked against independent sources (the raw
 * XQuAD, MGSM TSV, GSM8K and CommonsenseQA releases), and on broken hand-made files (file:line).
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BenchDefinition, EvalItem } from '../../lib/eval/bench';
import { resolveBench } from '../../lib/eval/benches';
import { MGSM_LANGS, MGSM_PREFIXES } from '../../lib/eval/benches/mgsm';
import { asObject, dataError, numberField, readJsonRecords, stringField } from '../../lib/eval/files';

const SHARED = resolve(__dirname, '../../../shared/data');
const haveShared = existsSync(SHARED);
const skip = haveShared ? false : `real eval data not found at ${SHARED} (../shared is only in the development checkout)`;
const XQUAD_INSTRUCTION =
  'First, translate the input into English. Then, answer the translated question based on the translated context. Your answer should be directly extracted from the context, and it should be a single entity, name, or number, not a sentence.';

const bench = (name: string) => resolveBench(name) as BenchDefinition<EvalItem & Record<string, unknown>>;

/** The raw XQuAD release (SQuAD layout), flattened in file order: the independent source of questions and answers. */
function rawXquad(lang: string): { question: string; answer: string }[] {
  const json = JSON.parse(readFileSync(join(SHARED, `xquad/xquad.${lang}.json`), 'utf8')) as {
    data: { paragraphs: { qas: { question: string; answers: { text: string }[] }[] }[] }[];
  };
  return json.data.flatMap((d) => d.paragraphs.flatMap((p) => p.qas.map((q) => ({ question: q.question, answer: q.answers[0].text }))));
}

t.test('XQuAD: all 11 languages from the folder, English gold everywhere', { skip }, async (t) => {
  const items = await bench('xquad').read(join(SHARED, 'seq_it_eval/test'), {});
  t.equal(items.length, 11 * 1190);
  const langs = [...new Set(items.map((i) => i.group))];
  t.same(langs, ['en', 'de', 'es', 'ru', 'zh', 'ar', 'el', 'hi', 'th', 'tr', 'vi']);
  const en = rawXquad('en');
  for (const lang of ['de', 'vi', 'zh']) {
    const of = items.filter((i) => i.group === lang);
    const raw = rawXquad(lang);
    t.equal(of.filter((item, k) => item.gold === en[k].answer).length, 1190, `${lang}: gold is the English answer`);
    t.equal(of.filter((item, k) => (item.input as string).endsWith(`\nQuestion: ${raw[k].question.trim()}`)).length, 1190, `${lang}: questions in ${lang} (the SIT files strip them), same order`);
    t.equal(of[7].id, `${lang}/7`);
  }
  const de0 = items.find((i) => i.id === 'de/0')!;
  t.same(resolveBench('xquad').prompt(de0), { user: `${XQUAD_INSTRUCTION} Input: ${de0.input as string}` });
  t.ok((de0.input as string).startsWith('Context: Die Verteidigung der Panthers'));
});

t.test('XQuAD: a base file needs English gold; ids are indices for a single file', { skip }, async (t) => {
  const dir = t.testdir({});
  await copyFile(join(SHARED, 'seq_it_eval/test/xquad_base_de.json'), join(dir, 'xquad_base_de.json'));
  await t.rejects(bench('xquad').read(join(dir, 'xquad_base_de.json'), {}), { code: 'ERR_ARGUMENT', message: /English answer/ });
  const items = await bench('xquad').read(join(dir, 'xquad_base_de.json'), { englishGold: join(SHARED, 'seq_it_eval/test/xquad_base_en.json') });
  t.equal(items[3].id, '3');
  t.equal(items[3].gold, rawXquad('en')[3].answer);
  t.not(items[3].gold, rawXquad('de')[3].answer, 'not the German answer the file holds');
  await writeFile(join(dir, 'short_en.json'), JSON.stringify([{ instruction: 'i', input: 'x', output: 'y' }]));
  await t.rejects(bench('xquad').read(join(dir, 'xquad_base_de.json'), { englishGold: join(dir, 'short_en.json') }), { code: 'ERR_DATA', message: /short_en\.json:1: has 1 records/ });
  await copyFile(join(dir, 'xquad_base_de.json'), join(dir, 'german.json'));
  await t.rejects(bench('xquad').read(join(dir, 'german.json'), {}), { code: 'ERR_ARGUMENT', message: /xquad_trans_vi\.json/ });
});

t.test('MGSM: 11 x 250 from the folder, gold from the TSV release, exact 8-shot prefixes', { skip }, async (t) => {
  const items = await bench('mgsm').read(join(SHARED, 'seq_it_eval/mgsm'), { mode: 'cot-en' });
  t.equal(items.length, 11 * 250);
  t.same([...new Set(items.map((i) => i.group))], [...MGSM_LANGS]);
  for (const lang of ['en', 'de', 'zh', 'te']) {
    const tsv = readFileSync(join(SHARED, `mgsm/mgsm_${lang}.tsv`), 'utf8').trimEnd().split('\n').map((l) => l.split('\t'));
    const of = items.filter((i) => i.group === lang);
    t.equal(of.filter((item, k) => Number(item.gold) === Number(tsv[k][1].replace(/,/g, '')) && item.question === tsv[k][0]).length, 250, `${lang}: questions and gold match the TSV`);
  }
  const de = items.find((i) => i.id === 'de/0')!;
  const prompt = resolveBench('mgsm').prompt(de);
  t.equal(prompt.assistantPrefix, ' Answer:');
  const blocks = prompt.user.split('\n\n');
  t.equal(blocks.length, 9, '8 demonstrations and the question');
  t.equal(
    blocks[0],
    "First, let's think step-by-step about the question in English. Then, answer the question, Question: Frage: Roger hat 5 Tennisbälle. Er kauft noch 2 Dosen Tennisbälle. In jeder Dose sind 3 Tennisbälle. Wie viele Tennisbälle hat er jetzt?\nAnswer: Step-by-Step Answer: Roger started with 5 balls. 2 cans of 3 tennis balls each is 6 tennis balls. 5 + 6 = 11.\nThe Answer is: 11",
  );
  t.equal(blocks[8], `${MGSM_PREFIXES['cot-en']}Question: ${de.question as string}`);

  const trans = await bench('mgsm').read(join(SHARED, 'seq_it_eval/mgsm/test/de.jsonl'), { mode: 'trans-cot' });
  t.equal(trans.length, 250);
  t.equal(trans[0].id, '0');
  const first = resolveBench('mgsm').prompt(trans[0]).user.split('\n\n')[0];
  t.equal(
    first,
    "First, let's translate the question to English. Then, think step-by-step about the question. Finally, answer the question, Question: Frage: Roger hat 5 Tennisbälle. Er kauft noch 2 Dosen Tennisbälle. In jeder Dose sind 3 Tennisbälle. Wie viele Tennisbälle hat er jetzt?\nAnswer: Translation the question into English:\nQuestion: Roger has 5 tennis balls. He buys 2 more cans of tennis balls. Each can has 3 tennis balls. How many tennis balls does he have now?\nStep-by-Step Answer: Roger started with 5 balls. 2 cans of 3 tennis balls each is 6 tennis balls. 5 + 6 = 11.\nThe Answer is: 11",
  );
  await t.rejects(bench('mgsm').read(join(SHARED, 'seq_it_eval/mgsm'), { mode: 'cot' }), { code: 'ERR_ARGUMENT' });
});

t.test('MGSM: the official mgsm_<lang>.tsv files read as the authors\' test/<lang>.jsonl do', async (t) => {
  const seed = Math.floor(Math.random() * 2 ** 31);
  t.comment(`seed ${seed}`);
  let state = seed;
  const next = (n: number) => ((state = (state * 1103515245 + 12345) % 2 ** 31), state % n);
  const word = () => Array.from({ length: 1 + next(8) }, () => 'abcdefghij'[next(10)]).join('');
  const rows = (n: number) => Array.from({ length: n }, () => ({ question: Array.from({ length: 3 + next(6) }, word).join(' ') + '?', answer: next(2) ? 1000 + next(1e6) : next(100) }));
  const exemplars = (label: string) => Array.from({ length: 8 }, (_, i) => JSON.stringify({ question: `${label}: e${i}`, answer: `Step: x. The answer is ${i}.`, answer_number: i })).join('\n');
  const en = rows(3 + next(5));
  const de = rows(3 + next(5));
  const tsv = (r: typeof en) => r.map((x) => `${x.question}\t${x.answer.toLocaleString('en-US')}`).join('\n') + '\n';
  const jsonl = (r: typeof en) => r.map((x) => JSON.stringify({ question: x.question, answer_number: x.answer })).join('\n');
  const dir = t.testdir({
    official: { 'mgsm_en.tsv': tsv(en), 'mgsm_de.tsv': tsv(de), examples: { 'en.jsonl': exemplars('Question'), 'de.jsonl': exemplars('Frage') } },
    authors: { test: { 'en.jsonl': jsonl(en), 'de.jsonl': jsonl(de) }, examples: { 'en.jsonl': exemplars('Question'), 'de.jsonl': exemplars('Frage') } },
    bad: { 'mgsm_en.tsv': 'q1\t3\nno number here\n' },
  });
  const strip = (items: Array<EvalItem & Record<string, unknown>>) => items.map(({ file: _f, line: _l, ...rest }) => rest);
  const official = await bench('mgsm').read(join(dir, 'official'), {});
  const authors = await bench('mgsm').read(join(dir, 'authors'), {});
  t.equal(official.length, en.length + de.length);
  t.same(strip(official), strip(authors), 'same items, ids, golds and exemplars from either layout');
  t.same(official.filter((i) => i.group === 'en').map((i) => Number(i.gold)), en.map((x) => x.answer), 'thousands separators read');
  t.same(official.map((i) => resolveBench('mgsm').prompt(i)), authors.map((i) => resolveBench('mgsm').prompt(i)), 'the same prompts');
  await writeFile(join(dir, 'loose_en.tsv'), tsv(en));
  await t.rejects(bench('mgsm').read(join(dir, 'loose_en.tsv'), {}), { message: /cannot tell the MGSM language of .*loose_en\.tsv: expected test\/<lang>\.jsonl \(the SIT authors' layout\) or mgsm_<lang>\.tsv/ });
  await mkdir(join(dir, 'alone'));
  await writeFile(join(dir, 'alone', 'mgsm_en.tsv'), tsv(en));
  const alone = await bench('mgsm').read(join(dir, 'alone', 'mgsm_en.tsv'), {});
  t.throws(() => resolveBench('mgsm').prompt(alone[0]), { message: /exemplars not found: expected .*alone[/\\]examples[/\\]en\.jsonl/ });
  const withExemplars = await bench('mgsm').read(join(dir, 'alone', 'mgsm_en.tsv'), { exemplars: join(dir, 'authors', 'examples') });
  t.same(resolveBench('mgsm').prompt(withExemplars[1]), resolveBench('mgsm').prompt(authors[1]), '--exemplars DIR for a TSV without examples/');
  const one = await bench('mgsm').read(join(dir, 'official', 'mgsm_de.tsv'), { mode: 'trans-cot' });
  t.same(one.map((i) => i.id), de.map((_, k) => String(k)));
  t.equal(one[1].line, 2);
  await t.rejects(bench('mgsm').read(join(dir, 'bad', 'mgsm_en.tsv'), {}), { code: 'ERR_DATA', message: /mgsm_en\.tsv:2: expected question<TAB>answer_number/ });
});

t.test('MGSM: the official TSV release as --data', { skip }, async (t) => {
  const items = await bench('mgsm').read(join(SHARED, 'mgsm', 'mgsm_en.tsv'), {});
  const authors = await bench('mgsm').read(join(SHARED, 'seq_it_eval/mgsm/test/en.jsonl'), {});
  t.equal(items.length, 250);
  t.same(items.map((i) => [i.question, Number(i.gold)]), authors.map((i) => [i.question, Number(i.gold)]));
  t.equal((await bench('mgsm').read(join(SHARED, 'mgsm'), {})).length, 11 * 250, 'the folder: every language');
});

t.test('GSM8K: 1319 golds (the first 250 agree with MGSM en), exemplars from either layout', { skip }, async (t) => {
  const test = join(SHARED, 'gsm8k/test.jsonl');
  const items = await bench('gsm8k').read(test, {});
  t.equal(items.length, 1319);
  const mgsm = readFileSync(join(SHARED, 'mgsm/mgsm_en.tsv'), 'utf8').trimEnd().split('\n').map((l) => l.split('\t'));
  t.equal(mgsm.filter(([q, n], k) => items[k].question === q && Number(items[k].gold) === Number(n.replace(/,/g, ''))).length, 250);
  const golds = new Set(items.map((i) => i.gold));
  for (const g of ['-10', '-3', '1450000', '2125']) t.ok(golds.has(g), `gold ${g} read from its written form`);
  t.throws(() => resolveBench('gsm8k').prompt(items[0]), { code: 'ERR_ARGUMENT', message: /exemplars/ });

  const fromMgsm = await bench('gsm8k').read(test, { exemplars: join(SHARED, 'seq_it_eval/mgsm/examples/en.jsonl') });
  const p = resolveBench('gsm8k').prompt(fromMgsm[0]);
  t.equal(p.assistantPrefix, 'Answer:');
  const blocks = p.user.split('\n\n');
  t.equal(blocks.length, 10, 'header, 8 demonstrations, the question');
  t.equal(blocks[0], 'Answer the following questions.');
  t.equal(blocks[1], 'Question: Roger has 5 tennis balls. He buys 2 more cans of tennis balls. Each can has 3 tennis balls. How many tennis balls does he have now?\nAnswer: Roger started with 5 balls. 2 cans of 3 tennis balls each is 6 tennis balls. 5 + 6 = 11. The answer is 11.');
  t.equal(blocks[9], `Question: ${fromMgsm[0].question as string}`);

  const fromTrain = await bench('gsm8k').read(test, { exemplars: join(SHARED, 'gsm8k/train.jsonl') });
  t.equal(
    resolveBench('gsm8k').prompt(fromTrain[0]).user.split('\n\n')[1],
    'Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?\nAnswer: Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in April and May. So the answer is 72.',
  );
});

t.test('CSQA: the SIT repeat file and the HF release give the same prompts and gold', { skip }, async (t) => {
  const sit = await bench('csqa').read(join(SHARED, 'seq_it_eval/test/commonsense_qa_repeat.json'), {});
  const hf = await bench('csqa').read(join(SHARED, 'commonsenseqa/dev_rand_split.hf_format.jsonl'), {});
  t.equal(sit.length, 1221);
  t.equal(hf.length, 1221);
  const csqa = resolveBench('csqa');
  t.equal(sit.filter((s, k) => csqa.prompt(s).user === csqa.prompt(hf[k]).user && s.gold === hf[k].gold).length, 1221);
  t.equal(sit[0].id, '0');
  t.equal(hf[0].id, '1afa02df02c908a558b4036e80242fac');
  t.equal(csqa.prompt(sit[0]).user, 'Please repeat the input, then select the correct choice to answer the question in the input. Input: Question: A revolving door is convenient for two direction travel, but it also serves as a security measure at a what?\nChoices: A:bank, B:library, C:department store, D:mall, E:new york');
});

t.test('SeqEval: 805 instructions grouped by chain depth', { skip }, async (t) => {
  const items = await bench('seqeval').read(join(SHARED, 'seqins_seqeval/seqEval.json'), {});
  t.equal(items.length, 805);
  const count = (g: string) => items.filter((i) => i.group === g).length;
  t.same([count('depth-1'), count('depth-2'), count('depth-3'), count('depth-4')], [81, 161, 242, 321]);
  t.match(resolveBench('seqeval').prompt(items[0]).user, /^Do some research about famous actors who started their careers on Broadway\./);
  t.same(items.filter((i) => (i.instruction as string).trim() === '').map((i) => i.id), ['547'], 'the released file has one empty instruction; it is kept so counts match');
});

t.test('bad or truncated files fail with file:line', async (t) => {
  const dir = t.testdir({
    'bad.jsonl': '{"question": "a", "answer": "#### 1"}\n{"question": "b", "answer": "#### 2"}\n{"question": "c", "answer": \n',
    'cut.jsonl': '{"question": "a", "answer": "#### 1"}\n{"question": "b", "answer": "#### ',
    'nogold.jsonl': '{"question": "a", "answer": "#### 1"}\n\n{"question": "b", "answer": "no marker"}\n',
    'nan.jsonl': '{"question": "a", "answer": "#### about 5"}\n',
    'xquad_trans_vi.json': '[\n{"instruction": "i", "input": "x", "output": "a"},\n{"instruction": "i", "input": "x", "output": "b"},\n{"instruction": "i", "input": "x"}\n]\n',
    'xquad_trans_ar.json': '[\n{"instruction": "i", "input": "x", "output": "a"},\n{"instruction": "i", "inp',
    'not_array.json': '[1, 2',
    'csqa_choices.json': JSON.stringify([{ instruction: 'i', input: 'Question: q\nChoices: A:x, B:y', output: 'A' }, { instruction: 'i', input: 'Question: q\nChoices: A:x, C:y', output: 'A' }], null, 1),
    'one_line.json': '[{"question": "a", "answer": "#### 1"}, {"question": "b", "answer": "#### 2"}, {"question": "c"}]',
    'csqa_gold.jsonl': '{"id": "1", "question": "q", "choices": {"label": ["A", "B"], "text": ["x", "y"]}, "answerKey": "E"}\n',
    'seqeval.json': '[{"instruction": "a", "iteration": 1},\n {"instruction": "b", "iteration": 0}]',
    'seqeval_no_text.json': '[{"instruction": "a", "iteration": 1},\n {"iteration": 2}]',
    mgsm: {
      test: { 'de.jsonl': '{"question": "q", "answer_number": 3}\n', 'xx.jsonl': '{"question": "q", "answer_number": 3}\n' },
      examples: {
        'en.jsonl': Array.from({ length: 8 }, (_, i) => `{"question": "Question: e${i}", "answer": "Step: x. The answer is ${i}.", "answer_number": ${i}}`).join('\n'),
        'de.jsonl': Array.from({ length: 8 }, (_, i) => `{"question": "Frage: d${i}", "answer": "y", "answer_number": ${i === 5 ? 99 : i}}`).join('\n'),
      },
    },
    short: { test: { 'en.jsonl': '{"question": "q", "answer_number": 3}\n' }, examples: { 'en.jsonl': '{"question": "q", "answer": "The answer is 1", "answer_number": 1}\n' } },
  });
  const at = (file: string, line: number) => ({ code: 'ERR_DATA', message: new RegExp(`${file.replace(/\./g, '\\.')}:${line}: `) });
  await t.rejects(bench('gsm8k').read(join(dir, 'bad.jsonl'), {}), at('bad.jsonl', 3));
  await t.rejects(bench('gsm8k').read(join(dir, 'cut.jsonl'), {}), { ...at('cut.jsonl', 2), message: /cut\.jsonl:2: .*truncated/ });
  await t.rejects(bench('gsm8k').read(join(dir, 'nogold.jsonl'), {}), at('nogold.jsonl', 3));
  await t.rejects(bench('gsm8k').read(join(dir, 'nan.jsonl'), {}), { message: /nan\.jsonl:1: gold after '####' is not a number: 'about 5'/ });
  await t.rejects(bench('gsm8k').read(join(dir, 'nan.jsonl'), { exemplars: join(dir, 'bad.jsonl') }), at('bad.jsonl', 3));
  await t.rejects(bench('xquad').read(join(dir, 'xquad_trans_vi.json'), {}), { message: /xquad_trans_vi\.json:4: record 2: field 'output' must be a string, got nothing/ });
  await t.rejects(bench('xquad').read(join(dir, 'xquad_trans_ar.json'), {}), at('xquad_trans_ar.json', 3));
  await t.rejects(readJsonRecords(join(dir, 'not_array.json')), at('not_array.json', 1));
  await t.rejects(bench('gsm8k').read(join(dir, 'one_line.json'), {}), { message: /one_line\.json:1: record 2: field 'answer' must be a string, got nothing/ }, 'a record on a shared line is named by its position');
  await t.rejects(bench('csqa').read(join(dir, 'csqa_choices.json'), {}), at('csqa_choices.json', 7));
  await t.rejects(bench('csqa').read(join(dir, 'csqa_gold.jsonl'), {}), { message: /csqa_gold\.jsonl:1: answer 'E' is not one of the choice labels AB/ });
  await t.rejects(bench('seqeval').read(join(dir, 'seqeval.json'), {}), { message: /seqeval\.json:2: record 1: 'iteration' must be a positive integer/ });
  await t.rejects(bench('seqeval').read(join(dir, 'seqeval_no_text.json'), {}), { message: /seqeval_no_text\.json:2: record 1: field 'instruction' must be a string/ });
  await t.rejects(bench('mgsm').read(join(dir, 'mgsm/test/de.jsonl'), {}), { message: /de\.jsonl:6: exemplar 5 answers 99 but English exemplar 5 answers 5/ });
  await t.rejects(bench('mgsm').read(join(dir, 'mgsm/test/xx.jsonl'), {}), { code: 'ERR_ARGUMENT', message: /cannot tell the MGSM language/ });
  await t.rejects(bench('mgsm').read(join(dir, 'short/test/en.jsonl'), {}), { message: /en\.jsonl:1: expected exactly 8 exemplars, found 1/ });
  await mkdir(join(dir, 'noex/test'), { recursive: true });
  await copyFile(join(dir, 'mgsm/test/de.jsonl'), join(dir, 'noex/test/de.jsonl'));
  const noExemplars = await bench('mgsm').read(join(dir, 'noex/test/de.jsonl'), {});
  t.equal(noExemplars[0].gold, '3', 'scoring needs no exemplars');
  t.throws(() => resolveBench('mgsm').prompt(noExemplars[0]), { code: 'ERR_DATA', message: /exemplars not found/ });
});

t.test('field helpers take a Where or a (file, line) pair', async (t) => {
  t.equal(dataError({ file: 'f.json', line: 1, record: 4 }, 'bad').message, 'f.json:1: record 4: bad');
  t.equal(dataError('f.jsonl', 3, 'bad').message, 'f.jsonl:3: bad');
  t.throws(() => asObject([1], 'f.jsonl', 2), { code: 'ERR_DATA', message: 'f.jsonl:2: expected a JSON object' });
  t.throws(() => stringField({ x: 1 }, 'x', 'f.jsonl', 5), { message: 'f.jsonl:5: field \'x\' must be a string, got 1' });
  t.throws(() => numberField({}, 'n', { file: 'g.jsonl', line: 7 }), { message: "g.jsonl:7: field 'n' must be a number, got nothing" });
  t.equal(numberField({ n: 2 }, 'n', 'g.jsonl', 1), 2);
});
