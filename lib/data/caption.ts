/**
 * Caption-then-answer VQA data (docs/method.md §1.2), data side only: VQA questions (LAVIS `vqa_train.json`
 * layout: question_id, question, answer[], image) joined on `image` with captions (COCO Karpathy
 * layout: caption, image). Output records are Alpaca-style (instruction, empty input, output) with
 * `image` and `question_id` kept as extra fields.
 *
 * Fixed bug (docs/method.md §1.2, §9 item 9): the released code built the baseline target from the caption
 * (`'Answer: {}'.format(caption, answer)`); here the baseline target is the answer.
 */
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { pick } from './sequential';
import { readJsonValues } from './read';
import { AlpacaRecord, DataCounts, dataError, emptyCounts, requireKept } from './records';
import { JsonlWriter } from './write';

export interface VqaQuestion {
  question_id?: number | string;
  question: string;
  /** the annotators' answers; the first is the target, as in the paper's code */
  answer: string[];
  image: string;
}

export const VQA_BASELINE_TEMPLATES: readonly string[] = [
  'Answer the question directly: {q}',
  'Please answer the following question: {q}',
  'Answer this question: {q}',
  'You should answer the following question: {q}',
];

function vqaRecord(q: VqaQuestion, instruction: string, output: string, strategy: string): AlpacaRecord {
  const extra: Record<string, unknown> = { image: q.image };
  if (q.question_id !== undefined) extra.question_id = q.question_id;
  return { instruction, input: '', output, strategy, extra };
}

/** `First describe this image then answer the question: {q}` → `Description: {caption}\nAnswer: {answer}`. */
export function captionThenAnswer(q: VqaQuestion, caption: string): AlpacaRecord {
  return vqaRecord(q, `First describe this image then answer the question: ${q.question}`, `Description: ${caption}\nAnswer: ${q.answer[0]}`, 'caption');
}

/** The baseline: a random direct-answer template, target `Answer: {answer}` (the caption bug fixed). */
export function vqaBaseline(q: VqaQuestion, rng: HostRng): AlpacaRecord {
  return vqaRecord(q, pick(VQA_BASELINE_TEMPLATES, rng).replace('{q}', q.question), `Answer: ${q.answer[0]}`, 'vqa-baseline');
}

function parseQuestion(value: unknown, file: string, line: number): VqaQuestion {
  const o = value as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) throw dataError({ file, line }, 'VQA question is not an object');
  const answers = typeof o.answer === 'string' ? [o.answer] : o.answer;
  if (typeof o.question !== 'string') throw dataError({ file, line }, "VQA question has no string 'question'");
  if (typeof o.image !== 'string') throw dataError({ file, line }, "VQA question has no string 'image'");
  if (!Array.isArray(answers) || answers.length === 0 || !answers.every((a) => typeof a === 'string')) {
    throw dataError({ file, line }, "VQA question has no 'answer' (a string or a non-empty list of strings)");
  }
  const q: VqaQuestion = { question: o.question, answer: answers as string[], image: o.image };
  if (typeof o.question_id === 'number' || typeof o.question_id === 'string') q.question_id = o.question_id;
  return q;
}

/** Captions by image (held in memory: one entry per caption, far smaller than the question files). */
export async function loadCaptions(path: string): Promise<Map<string, string[]>> {
  const byImage = new Map<string, string[]>();
  for await (const { value, line } of readJsonValues(path)) {
    const o = value as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o.caption !== 'string' || typeof o.image !== 'string') {
      throw dataError({ file: path, line }, "caption record needs string 'caption' and 'image'");
    }
    const list = byImage.get(o.image);
    if (list) list.push(o.caption);
    else byImage.set(o.image, [o.caption]);
  }
  return byImage;
}

export type VqaMix = 'base' | 'sequential' | 'merge';

export interface VqaOptions {
  questions: string;
  captions: string;
  out: string;
  /** base: baseline only; sequential: caption-then-answer only; merge: both forms of every pair */
  mix?: VqaMix;
  seed?: number;
  skipInvalid?: boolean;
}

/**
 * Writes the VQA training mix. Each question uses one of its image's captions (drawn from the
 * seed); questions whose image has no caption are skipped and counted.
 */
export async function buildVqaData(options: VqaOptions): Promise<DataCounts> {
  const mix = options.mix ?? 'merge';
  if (!['base', 'sequential', 'merge'].includes(mix)) throw new SeqtuneError(`unknown VQA mix '${mix}' (base, sequential, merge)`, 'ERR_ARGUMENT');
  const counts = emptyCounts();
  const rng = new HostRng(options.seed ?? 0);
  const captions = await loadCaptions(options.captions);
  const writer = await JsonlWriter.open(options.out);
  try {
    for await (const { value, line } of readJsonValues(options.questions, { skipInvalid: options.skipInvalid, counts })) {
      let q: VqaQuestion;
      try {
        q = parseQuestion(value, options.questions, line);
      } catch (error) {
        if (!options.skipInvalid) throw error;
        counts.skipped++;
        continue;
      }
      const list = captions.get(q.image);
      if (!list) {
        counts.skipped++;
        continue;
      }
      const caption = pick(list, rng);
      if (mix !== 'sequential') {
        await writer.write(vqaBaseline(q, rng));
        counts.kept++;
      }
      if (mix !== 'base') {
        await writer.write(captionThenAnswer(q, caption));
        counts.kept++;
        counts.augmented++;
      }
    }
    requireKept(options.questions, counts);
    await writer.commit();
  } finally {
    await writer.close();
  }
  return counts;
}
