/**
 * MGSM 8-shot (docs/method.md §5) on two layouts:
 * - the SIT authors': `test/<lang>.jsonl` (250 lines of {question, answer_number}) and
 *   `examples/<lang>.jsonl` (exactly 8 chain-of-thought exemplars, index-aligned with
 *   `examples/en.jsonl`); --data is one test file or the folder holding test/ and examples/;
 * - the official release: `mgsm_<lang>.tsv` (question<TAB>answer_number, no header); --data is one
 *   TSV or their folder, with the exemplars (the authors' jsonl) in --exemplars DIR or `examples/`
 *   beside the TSVs (the release has none of its own in that form).
 * A folder gives every language found in it.
 *
 * The prompt reproduces the authors' run_eval.py chat format exactly, quirks included:
 * - mode prefix P: cot-en "First, let's think step-by-step about the question in English. Then,
 *   answer the question, " or trans-cot "First, let's translate the question to English. Then,
 *   think step-by-step about the question. Finally, answer the question, ";
 * - demo i = P + "Question: " + <exemplar question of the language, which already starts with its
 *   own label, e.g. "Frage: "> + "\nAnswer: " + response, where response is the ENGLISH exemplar's
 *   rationale cut before its last "The answer is", then "\nThe Answer is: " + number; trans-cot
 *   puts "Translation the question into English:\n" + <English question> + "\n" before it;
 * - user turn = demos joined by "\n\n", then "\n\n" + P + "Question: " + <test question>;
 * - the assistant turn starts with " Answer:".
 * Score: exact match of the last number in the output (numbers.ts).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SeqtuneError } from '../../errors';
import { BenchDefinition, BenchOptions, EvalItem } from '../bench';
import { asObject, dataError, numberField, readJsonRecords, readText, SourcedValue, stringField, Where } from '../files';
import { extractLastNumber, numbersMatch } from '../numbers';

export const MGSM_LANGS = ['en', 'es', 'fr', 'de', 'ru', 'zh', 'ja', 'th', 'sw', 'bn', 'te'] as const;

export const MGSM_PREFIXES = {
  'cot-en': "First, let's think step-by-step about the question in English. Then, answer the question, ",
  'trans-cot': "First, let's translate the question to English. Then, think step-by-step about the question. Finally, answer the question, ",
} as const;

export type MgsmMode = keyof typeof MGSM_PREFIXES;

const SHOTS = 8;

export interface MgsmItem extends EvalItem {
  gold: string;
  lang: string;
  question: string;
  answerNumber: number;
  mode: MgsmMode;
  /** the joined demonstrations, or why they could not be read (only generation needs them) */
  demos: { text: string } | { missing: string };
}

export function parseMgsmMode(mode: string | undefined): MgsmMode {
  if (mode === undefined) return 'cot-en';
  if (mode in MGSM_PREFIXES) return mode as MgsmMode;
  throw new SeqtuneError(`unknown MGSM mode '${mode}' (one of: ${Object.keys(MGSM_PREFIXES).join(', ')})`, 'ERR_ARGUMENT');
}

interface Exemplar {
  question: string;
  answer: string;
  answerNumber: number;
  at: Where;
}

async function readExemplars(file: string): Promise<Exemplar[]> {
  const records: SourcedValue[] = await readJsonRecords(file);
  if (records.length !== SHOTS) throw dataError({ file, line: records.length === 0 ? 1 : records[records.length - 1].line }, `expected exactly ${SHOTS} exemplars, found ${records.length}`);
  return records.map(({ value, at }) => {
    const obj = asObject(value, at);
    return { question: stringField(obj, 'question', at), answer: stringField(obj, 'answer', at), answerNumber: numberField(obj, 'answer_number', at), at };
  });
}

/** The authors cut the English rationale before its last "The answer is" and restate the number. */
function rationale(en: Exemplar): string {
  const at = en.answer.lastIndexOf('The answer is');
  if (at === -1) throw dataError(en.at, "English exemplar answer has no 'The answer is'");
  return en.answer.slice(0, at).trim();
}

async function buildDemos(examplesDir: string, lang: string, mode: MgsmMode): Promise<string> {
  const enFile = join(examplesDir, 'en.jsonl');
  const langFile = join(examplesDir, `${lang}.jsonl`);
  const en = await readExemplars(enFile);
  const local = lang === 'en' ? en : await readExemplars(langFile);
  const prefix = MGSM_PREFIXES[mode];
  return local
    .map((ex, i) => {
      // index alignment with English is what lets the English rationale stand for this language's question
      if (!numbersMatch(ex.answerNumber, en[i].answerNumber)) {
        throw dataError(ex.at, `exemplar ${i} answers ${ex.answerNumber} but English exemplar ${i} answers ${en[i].answerNumber}: files not index-aligned`);
      }
      const translation = mode === 'trans-cot' ? `Translation the question into English:\n${en[i].question}\n` : '';
      const response = `${translation}${rationale(en[i])}\nThe Answer is: ${ex.answerNumber}`;
      return `${prefix}Question: ${ex.question}\nAnswer: ${response}`;
    })
    .join('\n\n');
}

async function demosFor(examplesDir: string, lang: string, mode: MgsmMode): Promise<MgsmItem['demos']> {
  if (!(await stat(examplesDir).catch(() => null))?.isDirectory()) {
    return { missing: `MGSM exemplars not found: expected ${examplesDir}/${lang}.jsonl and en.jsonl (the SIT authors' examples/ folder: beside test/, or beside the official mgsm_<lang>.tsv files)` };
  }
  return { text: await buildDemos(examplesDir, lang, mode) };
}

/** The language of a test file: `test/<lang>.jsonl` (the authors') or `mgsm_<lang>.tsv` (the official release). */
function languageOf(file: string): { lang: string; layout: 'jsonl' | 'tsv' } {
  const name = basename(file);
  const match = /^(?:mgsm_)?([a-z]{2})\.tsv$/.exec(name) ?? /^([a-z]{2})\.jsonl$/.exec(name);
  if (!match || !(MGSM_LANGS as readonly string[]).includes(match[1])) {
    throw new SeqtuneError(
      `cannot tell the MGSM language of ${file}: expected test/<lang>.jsonl (the SIT authors' layout) or mgsm_<lang>.tsv (the official MGSM release) with lang one of ${MGSM_LANGS.join(', ')}`,
      'ERR_ARGUMENT',
    );
  }
  return { lang: match[1], layout: name.endsWith('.tsv') ? 'tsv' : 'jsonl' };
}

/** The official TSV: `question<TAB>answer_number` per line, no header, no quoting; numbers may carry thousands commas. */
async function readTsv(file: string): Promise<Array<{ question: string; answerNumber: number; line: number; index: number }>> {
  const rows: Array<{ question: string; answerNumber: number; line: number; index: number }> = [];
  (await readText(file)).replace(/^\uFEFF/, '').split('\n').forEach((raw, i) => {
    const text = raw.replace(/\r$/, '');
    if (text.trim() === '') return;
    const tab = text.lastIndexOf('\t');
    const answer = tab < 0 ? '' : text.slice(tab + 1).trim().replace(/,/g, '');
    if (tab < 0 || answer === '' || !Number.isFinite(Number(answer))) {
      throw dataError({ file, line: i + 1 }, 'expected question<TAB>answer_number (the official MGSM TSV)');
    }
    rows.push({ question: text.slice(0, tab), answerNumber: Number(answer), line: i + 1, index: rows.length });
  });
  return rows;
}

async function readTestFile(file: string, mode: MgsmMode, prefixIds: boolean, exemplars: string | undefined): Promise<MgsmItem[]> {
  const { lang, layout } = languageOf(file);
  // --exemplars, else the authors' examples/ beside test/, or beside the TSVs of the official layout
  const demos = await demosFor(exemplars ?? join(layout === 'tsv' ? dirname(file) : dirname(dirname(file)), 'examples'), lang, mode);
  const rows =
    layout === 'tsv'
      ? await readTsv(file)
      : (await readJsonRecords(file)).map(({ value, line, index, at }) => {
          const obj = asObject(value, at);
          return { question: stringField(obj, 'question', at), answerNumber: numberField(obj, 'answer_number', at), line, index };
        });
  return rows.map(({ question, answerNumber, line, index }) => ({
    id: prefixIds ? `${lang}/${index}` : String(index),
    file,
    line,
    group: lang,
    gold: String(answerNumber),
    lang,
    question,
    answerNumber,
    mode,
    demos,
  }));
}

async function read(dataPath: string, options: BenchOptions): Promise<MgsmItem[]> {
  const mode = parseMgsmMode(options.mode);
  if (!(await stat(dataPath).catch(() => null))?.isDirectory()) return readTestFile(dataPath, mode, false, options.exemplars);
  const testDir = join(dataPath, 'test');
  const inTest = new Set(await readdir(testDir).catch(() => [] as string[]));
  const here = new Set(await readdir(dataPath));
  const files = MGSM_LANGS.flatMap((l) => (inTest.has(`${l}.jsonl`) ? [join(testDir, `${l}.jsonl`)] : here.has(`mgsm_${l}.tsv`) ? [join(dataPath, `mgsm_${l}.tsv`)] : []));
  if (files.length === 0) throw new SeqtuneError(`no MGSM test/<lang>.jsonl or mgsm_<lang>.tsv files under ${dataPath}`, 'ERR_ARGUMENT');
  const items: MgsmItem[] = [];
  for (const file of files) items.push(...(await readTestFile(file, mode, true, options.exemplars)));
  return items;
}

export const mgsmBench: BenchDefinition<MgsmItem> = {
  description: 'MGSM 8-shot (cot-en or trans-cot): exact match of the last number, per language',
  read,
  prompt(item) {
    if ('missing' in item.demos) throw new SeqtuneError(item.demos.missing, 'ERR_DATA');
    const prefix = MGSM_PREFIXES[item.mode];
    return { user: `${item.demos.text}\n\n${prefix}Question: ${item.question}`, assistantPrefix: ' Answer:' };
  },
  score(item, output) {
    const number = extractLastNumber(output);
    return { extracted: number?.text ?? null, correct: number !== null && numbersMatch(number.value, item.answerNumber), followed: null };
  },
  maxNewTokens: 512,
  averages: { all: MGSM_LANGS, 'non-en': MGSM_LANGS.filter((l) => l !== 'en') },
};
