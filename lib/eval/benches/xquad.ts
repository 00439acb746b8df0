/**
 * XQuAD translate-then-answer (docs/method.md §1.1, §5) on the authors' SIT-format files
 * `xquad_{base,trans}_<lang>.json`: JSON arrays of {instruction, input, output}, 1190 per language.
 *
 * Gold is the ENGLISH answer. The trans files and base_en already hold it; the other base files
 * hold the answer in their own language (the v1 layout), so their English gold is read from
 * `englishGold` (any file of the same 1190 questions with English outputs, e.g. xquad_base_en.json),
 * by default the xquad_base_en.json next to them.
 *
 * Scoring follows the authors' eval_xquad.py with one fix:
 * - follow = the lower-cased output contains a marker, tried in the order `result:`, `answer:`,
 *   `answer is`, `result is` (first marker found in that order wins, at its first occurrence);
 * - the answer is the text after that marker; correct = it contains the gold or the gold contains
 *   it (lower-cased); without a marker the whole output is matched the same way, which counts for
 *   accuracy but not for accuracy-with-follow;
 * - fix: an empty answer is never correct (the authors' `pred in gold` accepted "" for any gold).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SeqtuneError } from '../../errors';
import { BenchDefinition, BenchOptions, EvalItem, ItemScore } from '../bench';
import { asObject, dataError, readJsonRecords, stringField, Where } from '../files';

export const XQUAD_BASE_LANGS = ['en', 'de', 'es', 'ru', 'zh'] as const;
export const XQUAD_TRANS_LANGS = ['ar', 'el', 'hi', 'th', 'tr', 'vi'] as const;
export const XQUAD_MARKERS = ['result:', 'answer:', 'answer is', 'result is'] as const;

const FILE_NAME = /^xquad_(base|trans)_([a-z]{2})\.json$/;

export interface XquadItem extends EvalItem {
  gold: string;
  lang: string;
  instruction: string;
  input: string;
}

function answerMatches(answer: string, gold: string): boolean {
  return answer.length > 0 && gold.length > 0 && (answer.includes(gold) || gold.includes(answer));
}

export function scoreXquad(output: string, gold: string): ItemScore {
  const text = output.toLowerCase();
  const target = gold.toLowerCase().trim();
  for (const marker of XQUAD_MARKERS) {
    const at = text.indexOf(marker);
    if (at !== -1) {
      const answer = text.slice(at + marker.length).trim();
      return { extracted: answer === '' ? null : answer, correct: answerMatches(answer, target), followed: true };
    }
  }
  const whole = text.trim();
  return { extracted: whole === '' ? null : whole, correct: answerMatches(whole, target), followed: false };
}

interface SitRecord {
  instruction: string;
  input: string;
  output: string;
  at: Where;
}

async function readSitFile(file: string): Promise<SitRecord[]> {
  return (await readJsonRecords(file)).map(({ value, at }) => {
    const obj = asObject(value, at);
    const output = stringField(obj, 'output', at);
    if (output.trim() === '') throw dataError(at, "empty gold answer in 'output'");
    return { instruction: stringField(obj, 'instruction', at), input: stringField(obj, 'input', at), output, at };
  });
}

async function englishGold(file: string, count: number, options: BenchOptions): Promise<string[]> {
  const source = options.englishGold ?? join(dirname(file), 'xquad_base_en.json');
  try {
    await stat(source);
  } catch {
    throw new SeqtuneError(
      `${file} holds gold answers in its own language; XQuAD is scored against the English answer: pass the English file (e.g. xquad_base_en.json) as englishGold / --english-gold`,
      'ERR_ARGUMENT',
    );
  }
  const records = await readSitFile(source);
  if (records.length !== count) throw dataError({ file: source, line: 1 }, `has ${records.length} records but ${file} has ${count}: not the same questions`);
  return records.map((r) => r.output);
}

async function readLanguageFile(file: string, options: BenchOptions, prefixIds: boolean): Promise<XquadItem[]> {
  const match = FILE_NAME.exec(basename(file));
  if (!match) throw new SeqtuneError(`cannot tell the XQuAD language of ${file}: expected a name like xquad_trans_vi.json`, 'ERR_ARGUMENT');
  const [, set, lang] = match;
  const records = await readSitFile(file);
  const gold = set === 'base' && lang !== 'en' ? await englishGold(file, records.length, options) : records.map((r) => r.output);
  return records.map((r, i) => ({
    id: prefixIds ? `${lang}/${i}` : String(i),
    file,
    line: r.at.line,
    group: lang,
    gold: gold[i],
    lang,
    instruction: r.instruction,
    input: r.input,
  }));
}

const LANG_ORDER: readonly string[] = [...XQUAD_BASE_LANGS, ...XQUAD_TRANS_LANGS];

async function read(dataPath: string, options: BenchOptions): Promise<XquadItem[]> {
  if (!(await stat(dataPath).catch(() => null))?.isDirectory()) return readLanguageFile(dataPath, options, false);
  const names = (await readdir(dataPath)).filter((n) => FILE_NAME.test(n));
  if (names.length === 0) throw new SeqtuneError(`no xquad_{base,trans}_<lang>.json files in ${dataPath}`, 'ERR_ARGUMENT');
  const rank = (n: string) => {
    const at = LANG_ORDER.indexOf(FILE_NAME.exec(n)![2]);
    return at === -1 ? LANG_ORDER.length : at;
  };
  names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const items: XquadItem[] = [];
  for (const name of names) items.push(...(await readLanguageFile(join(dataPath, name), options, true)));
  return items;
}

export const xquadBench: BenchDefinition<XquadItem> = {
  description: 'XQuAD translate-then-answer: follow rate (answer markers) and accuracy against the English answer',
  read,
  // the authors' eval user turn is "{instruction} Input: {input}" (docs/method.md §5)
  prompt: (item) => ({ user: `${item.instruction} Input: ${item.input}` }),
  score: (item, output) => scoreXquad(output, item.gold),
  maxNewTokens: 512,
  averages: { base: XQUAD_BASE_LANGS, trans: XQUAD_TRANS_LANGS },
};
