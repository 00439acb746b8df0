/**
 * CommonsenseQA repeat-then-answer probe (docs/method.md §1.1, §5). Reads either
 * - the authors' `commonsense_qa_repeat.json` (JSON array of {instruction, input, output}, input
 *   "Question: ...\nChoices: A:..., B:..., ...", output the answer letter; ids are indices), or
 * - the Hugging Face `commonsense_qa` JSONL ({id, question, choices: {label, text}, answerKey}),
 *   turned into the same instruction and input (ids are the file's ids).
 * User turn: "{instruction} Input: {input}", as for XQuAD.
 *
 * Scoring rules (the authors' probe parser is commented out in their code, so these are ours):
 * - followed = the output repeats the question (case and whitespace ignored);
 * - the answer region is the text after the LAST answer marker (`answer:`, `result:`,
 *   `correct choice:`, `answer is`, `choice is`, `result is`, any case) — the last one because the
 *   repeated input comes first; with no marker, the output minus lines starting "Question:" or
 *   "Choices:" (the repeat);
 * - in the region, the first capital A–E standing alone and followed by ':', ')', '.', ']', '*' or
 *   the end of a line (e.g. "B:", "(C)", "D.", "**E**"); else the first capital A–E standing alone
 *   (so "Answer: A bank" reads A); lower-case letters never count ("a" is an article);
 * - else, if exactly one choice's text appears in the region, that choice;
 * - else nothing is extracted and the item is wrong.
 */
import { BenchDefinition, EvalItem, ItemScore } from '../bench';
import { asObject, dataError, readJsonRecords, SourcedValue, stringField, Where } from '../files';

export const CSQA_REPEAT_INSTRUCTION = 'Please repeat the input, then select the correct choice to answer the question in the input.';
const LETTERS = ['A', 'B', 'C', 'D', 'E'];
const MARKERS = ['answer:', 'result:', 'correct choice:', 'answer is', 'choice is', 'result is'];

export interface Choice {
  label: string;
  text: string;
}

export interface CsqaItem extends EvalItem {
  gold: string;
  instruction: string;
  input: string;
  question: string;
  choices: Choice[];
}

const normalize = (s: string) => s.toLowerCase().replace(/\s+/g, ' ').trim();

function answerRegion(output: string): string {
  const lower = output.toLowerCase();
  let end = -1;
  for (const marker of MARKERS) {
    const at = lower.lastIndexOf(marker);
    if (at !== -1) end = Math.max(end, at + marker.length);
  }
  if (end !== -1) return output.slice(end);
  return output
    .split('\n')
    .filter((l) => !/^\s*(question|choices)\s*:/i.test(l))
    .join('\n');
}

const STRONG_LETTER = /(?<![\p{L}\p{N}])[([*]*([A-E])(?:[:).\]*]|\s*$)/mu;
const LONE_LETTER = /(?<![\p{L}\p{N}])([A-E])(?![\p{L}\p{N}])/u;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function parseChoice(output: string, choices: Choice[]): string | null {
  const region = answerRegion(output);
  const letter = STRONG_LETTER.exec(region) ?? LONE_LETTER.exec(region);
  if (letter) return letter[1];
  const named = choices.filter((c) => new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(c.text.toLowerCase())}(?![\\p{L}\\p{N}])`, 'u').test(region.toLowerCase()));
  return named.length === 1 ? named[0].label : null;
}

export function scoreCsqa(output: string, item: Pick<CsqaItem, 'gold' | 'question' | 'choices'>): ItemScore {
  const extracted = parseChoice(output, item.choices);
  return { extracted, correct: extracted === item.gold, followed: normalize(output).includes(normalize(item.question)) };
}

/** "Question: q\nChoices: A:x, B:y" → the question and the choices. */
function parseInput(input: string, at: Where): { question: string; choices: Choice[] } {
  const match = /^Question:\s*([\s\S]*?)\nChoices:\s*(.*)$/.exec(input);
  if (!match) throw dataError(at, "input is not 'Question: ...\\nChoices: A:..., B:...'");
  // a choice text may itself contain ", ", so split only where the next label starts
  const choices = match[2].split(/, (?=[A-E]:)/).map((part) => ({ label: part[0], text: part.slice(2).trim() }));
  if (choices.some((c, i) => c.label !== LETTERS[i] || c.text === '')) throw dataError(at, `cannot read the choices '${match[2]}'`);
  return { question: match[1].trim(), choices };
}

function goldLetter(value: string, choices: Choice[], at: Where): string {
  if (!choices.some((c) => c.label === value)) throw dataError(at, `answer '${value}' is not one of the choice labels ${choices.map((c) => c.label).join('')}`);
  return value;
}

function fromSitRecord({ value, line, index, at }: SourcedValue, file: string): CsqaItem {
  const obj = asObject(value, at);
  const input = stringField(obj, 'input', at);
  const { question, choices } = parseInput(input, at);
  const gold = goldLetter(stringField(obj, 'output', at).trim(), choices, at);
  return { id: String(index), file, line, group: '', gold, instruction: stringField(obj, 'instruction', at), input, question, choices };
}

function fromHfRecord({ value, line, at }: SourcedValue, file: string): CsqaItem {
  const obj = asObject(value, at);
  const question = stringField(obj, 'question', at).trim();
  const raw = asObject(obj.choices, at);
  const labels = raw.label;
  const texts = raw.text;
  if (!Array.isArray(labels) || !Array.isArray(texts) || labels.length !== texts.length || labels.length === 0) {
    throw dataError(at, "'choices' must hold equally long 'label' and 'text' arrays");
  }
  const choices = labels.map((label, i) => {
    if (label !== LETTERS[i] || typeof texts[i] !== 'string') throw dataError(at, `choice ${i} must be label '${LETTERS[i]}' with a text`);
    return { label: label as string, text: texts[i] as string };
  });
  const input = `Question: ${question}\nChoices: ${choices.map((c) => `${c.label}:${c.text}`).join(', ')}`;
  const gold = goldLetter(stringField(obj, 'answerKey', at), choices, at);
  return { id: stringField(obj, 'id', at), file, line, group: '', gold, instruction: CSQA_REPEAT_INSTRUCTION, input, question, choices };
}

async function read(dataPath: string): Promise<CsqaItem[]> {
  const records = await readJsonRecords(dataPath);
  return records.map((r) => {
    const obj = asObject(r.value, r.at);
    return 'answerKey' in obj ? fromHfRecord(r, dataPath) : fromSitRecord(r, dataPath);
  });
}

export const csqaBench: BenchDefinition<CsqaItem> = {
  description: 'CommonsenseQA repeat-then-answer probe: repeat rate and accuracy of the parsed choice letter',
  read,
  prompt: (item) => ({ user: `${item.instruction} Input: ${item.input}` }),
  score: (item, output) => scoreCsqa(output, item),
  maxNewTokens: 512,
};
