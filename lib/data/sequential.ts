/**
 * The v1 hand-made sequential tasks (docs/method.md §1.1) as pure functions over in-memory records: each takes an
 * Alpaca record plus whatever the intermediate step needs (a paraphrase, a translated input) and
 * returns the augmented record, or null when the record does not qualify (no input). Nothing here
 * reads files or calls a model, so callers can build synthetic training sets with them directly.
 *
 * - repeatThenAnswer, paraphraseThenAnswer, translateThenAnswer: the paper's exact 2-step
 *   templates (with one deliberate fix: the paraphrase label is "Paraphrase", not the code's
 *   "Raraphrase" typo; pass `label: 'Raraphrase'` to reproduce it);
 * - multiStepThenAnswer: any list of intermediate steps (built-in or the caller's own) with the
 *   labelled output `1. Repeat:\n...\n2. Paraphrase:\n...\nResult: ...`, and banks of alternative
 *   phrasings for the verbalisation, number-of-steps and unseen-task analyses.
 */
import { HostRng } from '../rng';
import { AlpacaRecord } from './records';

/** The repeat template of the released data (docs/method.md §1.1b): not lower-cased, output `{input}\n{output}`. */
export const REPEAT_PREFIX = 'First repeat the input, then ';
export const PARAPHRASE_PREFIX = 'First paraphrase below input, then ';
export const TRANSLATE_PREFIX = 'First translate below input into English, then ';

/** The verbalisation bank of the v1 merge script (docs/method.md §1.1b), as written there. */
export const REPEAT_VERBALISATIONS: readonly string[] = [
  'First repeat below question, then ',
  'First repeat below input then ',
  'First repeat below input, then ',
  'Please first repeat below input, and then ',
  'Please first restate the following input, then',
  'Kindly reiterate the given input initially, and ',
  'Please kindly repeat the given input initially, and ',
];

/** prefix + instruction; one bank entry lacks its trailing space, so one is added when missing. */
function withPrefix(prefix: string, instruction: string): string {
  return prefix === '' || /\s$/.test(prefix) ? prefix + instruction : `${prefix} ${instruction}`;
}

function hasInput(record: AlpacaRecord): boolean {
  return record.input.trim() !== '';
}

function augmented(record: AlpacaRecord, strategy: string, fields: Partial<AlpacaRecord>): AlpacaRecord {
  const { option: _option, ...rest } = record;
  return { ...rest, ...fields, strategy };
}

/** Repeat-then-answer (docs/method.md §1.1b); null for records without input. */
export function repeatThenAnswer(record: AlpacaRecord, options: { prefix?: string } = {}): AlpacaRecord | null {
  if (!hasInput(record)) return null;
  return augmented(record, 'repeat', {
    instruction: withPrefix(options.prefix ?? REPEAT_PREFIX, record.instruction),
    output: `${record.input}\n${record.output}`,
  });
}

/** Paraphrase-then-answer (docs/method.md §1.1c); the instruction is lower-cased as in the paper's code. */
export function paraphraseThenAnswer(record: AlpacaRecord, paraphrase: string, options: { prefix?: string; label?: string } = {}): AlpacaRecord | null {
  if (!hasInput(record) || paraphrase.trim() === '') return null;
  return augmented(record, 'paraphrase', {
    instruction: withPrefix(options.prefix ?? PARAPHRASE_PREFIX, record.instruction.toLowerCase()),
    output: `${options.label ?? 'Paraphrase'}:\n${paraphrase}\nResult: ${record.output}`,
  });
}

/**
 * Translate-then-answer, v1 (docs/method.md §1.1a): the input shown in a foreign language, the English instruction
 * lower-cased, and the output `Translation into English: \n{English input}\nResult: {output}`.
 */
export function translateThenAnswer(record: AlpacaRecord, foreignInput: string, options: { lang?: string; prefix?: string } = {}): AlpacaRecord | null {
  if (!hasInput(record) || foreignInput.trim() === '') return null;
  const out = augmented(record, 'translate', {
    instruction: withPrefix(options.prefix ?? TRANSLATE_PREFIX, record.instruction.toLowerCase()),
    input: foreignInput,
    output: `Translation into English: \n${record.input}\nResult: ${record.output}`,
  });
  if (options.lang !== undefined) out.lang = options.lang;
  return out;
}

/** One intermediate task of a sequential instruction. */
export interface Step {
  /** the label in the output, e.g. 'Repeat' */
  label: string;
  /** the imperative in the instruction, e.g. 'repeat the input' */
  phrase: string;
  /** the step's answer text */
  text: string;
  /** the input the example shows instead of the original (translate: the foreign text) */
  shownInput?: string;
}

/** Alternative phrasings of the built-in steps (the v1 prefixes, split into step and frame). */
export const STEP_PHRASES = {
  repeat: ['repeat the input', 'repeat below input', 'restate the following input', 'reiterate the given input', 'repeat the given input word for word'],
  paraphrase: ['paraphrase below input', 'paraphrase the input', 'rephrase the given input in other words', 'restate the input using different wording'],
  translate: ['translate below input into English', 'translate the input into English', 'render the given input in English'],
} as const;

/** How step phrases and the task are joined into one instruction. */
export interface Frame {
  lead: string;
  /** between two step phrases */
  join: string;
  /** between the last step phrase and the task */
  last: string;
}

export const FRAMES: readonly Frame[] = [
  { lead: 'First ', join: ', then ', last: ', then ' },
  { lead: 'Please first ', join: ', and then ', last: ', and then ' },
  { lead: 'To begin, ', join: '; next, ', last: '; finally, ' },
  { lead: 'Kindly ', join: ' first, then ', last: ', and after that ' },
];

export function repeatStep(record: AlpacaRecord, phrase: string = STEP_PHRASES.repeat[0]): Step | null {
  return hasInput(record) ? { label: 'Repeat', phrase, text: record.input } : null;
}

export function paraphraseStep(paraphrase: string, phrase: string = STEP_PHRASES.paraphrase[0]): Step {
  return { label: 'Paraphrase', phrase, text: paraphrase };
}

/** Translate step: the example shows the foreign input and the step answers with the English one. */
export function translateStep(record: AlpacaRecord, foreignInput: string, phrase: string = STEP_PHRASES.translate[0]): Step | null {
  return hasInput(record) ? { label: 'Translation into English', phrase, text: record.input, shownInput: foreignInput } : null;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/**
 * A sequential example with any number of intermediate steps. Instruction:
 * `{lead}{phrase1}{join}{phrase2}...{last}{task}` (task with its first letter lower-cased); output:
 * `1. {label1}:\n{text1}\n2. {label2}:\n{text2}\n...Result: {output}`. Null for an empty step list.
 */
export function multiStepThenAnswer(
  record: AlpacaRecord,
  steps: readonly Step[],
  options: { frame?: Frame; answerLabel?: string; strategy?: string } = {},
): AlpacaRecord | null {
  if (steps.length === 0) return null;
  const frame = options.frame ?? FRAMES[0];
  const shown = steps.reduce<string | undefined>((acc, s) => s.shownInput ?? acc, undefined);
  const instruction = frame.lead + steps.map((s) => s.phrase).join(frame.join) + frame.last + lowerFirst(record.instruction);
  const output = steps.map((s, i) => `${i + 1}. ${s.label}:\n${s.text}\n`).join('') + `${options.answerLabel ?? 'Result'}: ${record.output}`;
  const out = augmented(record, options.strategy ?? steps.map((s) => s.label.split(' ')[0].toLowerCase()).join('-'), { instruction, output });
  if (shown !== undefined) out.input = shown;
  return out;
}

/** A random entry of a bank, drawn from the caller's generator (deterministic for its seed). */
export function pick<T>(bank: readonly T[], rng: HostRng): T {
  return bank[rng.int(bank.length)];
}
