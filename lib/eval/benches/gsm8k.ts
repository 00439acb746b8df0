/**
 * GSM8K 8-shot chain of thought (docs/method.md §5) on openai/grade-school-math `test.jsonl`
 * ({question, answer} with the gold after "#### ", e.g. "#### 1,600" or "#### -10").
 *
 * The prompt matches the authors' run_eval.py chat format: user turn =
 * "Answer the following questions.\n\n" + demos joined by "\n\n" + "\n\n" + "Question: " + question,
 * demo = "Question: " + q + "\nAnswer: " + rationale; the assistant turn starts with "Answer:".
 * The authors' 8 exemplars live in their code, not in a data file, so they come from `exemplars`:
 * the first 8 records of a JSONL in either layout —
 * - MGSM exemplars ({question: "Question: ...", answer: "Step-by-Step Answer: ... The answer is N."}),
 *   labels dropped;
 * - GSM8K records ({question, answer: "...<<calc>>...\n#### N"}), calculator annotations dropped
 *   and "#### N" written as "So the answer is N." (the wording of the authors' exemplars).
 * Score: exact match of the last number in the output (numbers.ts).
 */
import { SeqtuneError } from '../../errors';
import { BenchDefinition, BenchOptions, EvalItem } from '../bench';
import { asObject, dataError, readJsonRecords, stringField, Where } from '../files';
import { extractLastNumber, numbersMatch, parseGoldNumber } from '../numbers';

const SHOTS = 8;

export interface Gsm8kItem extends EvalItem {
  gold: string;
  question: string;
  answerNumber: number;
  /** the joined demonstrations, or null when no exemplars were given (only generation needs them) */
  demos: string | null;
}

function goldOf(answer: string, at: Where): number {
  const marker = answer.lastIndexOf('####');
  if (marker === -1) throw dataError(at, "answer has no '#### <number>' line");
  const value = parseGoldNumber(answer.slice(marker + 4));
  if (value === null) throw dataError(at, `gold after '####' is not a number: '${answer.slice(marker + 4).trim()}'`);
  return value;
}

function demoFrom(obj: Record<string, unknown>, at: Where): string {
  const question = stringField(obj, 'question', at).replace(/^Question:\s*/, '');
  const answer = stringField(obj, 'answer', at);
  let rationale: string;
  if (answer.includes('####')) {
    const steps = answer.slice(0, answer.lastIndexOf('####')).replace(/<<[^>]*>>/g, '').split('\n').map((s) => s.trim()).filter(Boolean);
    rationale = [...steps, `So the answer is ${goldOf(answer, at)}.`].join(' ');
  } else {
    rationale = answer.replace(/^Step-by-Step Answer:\s*/, '').trim();
  }
  return `Question: ${question}\nAnswer: ${rationale}`;
}

export async function readGsm8kExemplars(file: string): Promise<string> {
  const records = await readJsonRecords(file);
  if (records.length < SHOTS) throw dataError({ file, line: records.length === 0 ? 1 : records[records.length - 1].line }, `expected at least ${SHOTS} exemplars, found ${records.length}`);
  return records
    .slice(0, SHOTS)
    .map(({ value, at }) => demoFrom(asObject(value, at), at))
    .join('\n\n');
}

async function read(dataPath: string, options: BenchOptions): Promise<Gsm8kItem[]> {
  const demos = options.exemplars === undefined ? null : await readGsm8kExemplars(options.exemplars);
  return (await readJsonRecords(dataPath)).map(({ value, line, index, at }) => {
    const obj = asObject(value, at);
    const answerNumber = goldOf(stringField(obj, 'answer', at), at);
    return { id: String(index), file: dataPath, line, group: '', gold: String(answerNumber), question: stringField(obj, 'question', at), answerNumber, demos };
  });
}

export const gsm8kBench: BenchDefinition<Gsm8kItem> = {
  description: 'GSM8K 8-shot chain of thought: exact match of the last number (needs --exemplars to generate)',
  read,
  prompt(item) {
    if (item.demos === null) throw new SeqtuneError('GSM8K generation needs 8 exemplars: pass exemplars / --exemplars FILE.jsonl', 'ERR_ARGUMENT');
    return { user: `Answer the following questions.\n\n${item.demos}\n\nQuestion: ${item.question.trim()}`, assistantPrefix: 'Answer:' };
  },
  score(item, output) {
    const number = extractLastNumber(output);
    return { extracted: number?.text ?? null, correct: number !== null && numbersMatch(number.value, item.answerNumber), followed: null };
  },
  maxNewTokens: 512,
};
