/**
 * The demo's world: short inputs of lowercase words, seven primitive text tasks with several
 * natural-language phrasings each, and a fixed letter substitution that plays the foreign language
 * (its "translation into English" is decoding). Everything is a pure function, so the data, the
 * gold answers and the scorer agree by construction and tests can check them independently.
 */
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';

/** Short words (3-5 letters, each with a vowel and a consonant that survives a shift). */
export const WORDS: readonly string[] = [
  'cat', 'dog', 'sun', 'map', 'red', 'box', 'cup', 'hat', 'pen', 'bus', 'fig', 'jam', 'kite', 'lamp', 'milk', 'nest',
  'pig', 'rain', 'ship', 'tree', 'vase', 'wolf', 'yak', 'zoo', 'bell', 'coin', 'desk', 'frog', 'gold', 'hill', 'ink',
  'jar', 'king', 'leaf', 'moon', 'note', 'owl', 'park', 'quiz', 'rose', 'sand', 'tent', 'unit', 'van', 'wind', 'fox',
  'bread', 'cloud', 'grape', 'lemon', 'mango', 'plant', 'river', 'stone', 'tiger', 'water',
];

/**
 * The foreign language: plain letter i is written as CIPHER[i]. A fixed derangement of a-z (no
 * letter stands for itself), so every encoded word differs from its plain form.
 */
export const CIPHER = 'qwertyuiopasdfghjklzxcvbnm';
const PLAIN = 'abcdefghijklmnopqrstuvwxyz';

function substitute(text: string, from: string, to: string): string {
  let out = '';
  for (const c of text) {
    const i = from.indexOf(c);
    out += i >= 0 ? to[i] : c;
  }
  return out;
}

/** Plain text into the foreign language (only lowercase letters change). */
export const encode = (text: string): string => substitute(text, PLAIN, CIPHER);
/** The inverse of encode. */
export const decode = (text: string): string => substitute(text, CIPHER, PLAIN);

export type TaskName = 'reverse' | 'uppercase' | 'sort' | 'dropvowels' | 'shift' | 'mirror' | 'count';

export interface Task {
  name: TaskName;
  /** the step label in a sequential answer, e.g. `1. Sort:` */
  label: string;
  /** imperative phrasings (lower case, no final punctuation): the verbalisation bank */
  phrases: readonly string[];
  apply(text: string): string;
  /** its answer is not text the other tasks can work on, so it may only be the last step */
  terminal: boolean;
}

const words = (text: string) => text.split(' ');
const isVowel = (c: string) => 'aeiouAEIOU'.includes(c);

function shiftLetter(c: string): string {
  const code = c.charCodeAt(0);
  if (c >= 'a' && c <= 'z') return String.fromCharCode(97 + ((code - 97 + 1) % 26));
  if (c >= 'A' && c <= 'Z') return String.fromCharCode(65 + ((code - 65 + 1) % 26));
  return c;
}

export const TASKS: readonly Task[] = [
  {
    name: 'reverse',
    label: 'Reverse',
    phrases: ['reverse the word order', 'put the words in reverse order', 'write the words from last to first', 'list the words backwards'],
    apply: (text) => words(text).reverse().join(' '),
    terminal: false,
  },
  {
    name: 'uppercase',
    label: 'Uppercase',
    phrases: ['uppercase the text', 'write the text in capital letters', 'convert every letter to upper case', 'capitalise all the letters'],
    apply: (text) => text.toUpperCase(),
    terminal: false,
  },
  {
    name: 'sort',
    label: 'Sort',
    phrases: ['sort the words', 'put the words in alphabetical order', 'order the words from a to z', 'arrange the words alphabetically'],
    // code-point order: the texts are all one case, so this is alphabetical and locale-free
    apply: (text) => words(text).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(' '),
    terminal: false,
  },
  {
    name: 'dropvowels',
    label: 'Drop vowels',
    phrases: ['drop the vowels', 'remove every vowel', 'delete all vowels from the text', 'strip out the vowels'],
    apply: (text) => [...text].filter((c) => !isVowel(c)).join(''),
    terminal: false,
  },
  {
    name: 'shift',
    label: 'Shift',
    phrases: ['shift each letter by one', 'replace every letter with the next one', 'move each letter one step forward', 'advance every letter by one'],
    apply: (text) => [...text].map(shiftLetter).join(''),
    terminal: false,
  },
  {
    name: 'mirror',
    label: 'Mirror',
    phrases: ['spell each word backwards', 'reverse the letters of every word', 'mirror each word', 'write every word back to front'],
    apply: (text) => words(text).map((w) => [...w].reverse().join('')).join(' '),
    terminal: false,
  },
  {
    name: 'count',
    label: 'Count',
    phrases: ['count the words', 'say how many words there are', 'give the number of words', 'tell how many words the text has'],
    apply: (text) => String(words(text).length),
    terminal: true,
  },
];

export const TASK_NAMES: readonly TaskName[] = TASKS.map((t) => t.name);

export function taskByName(name: string): Task {
  const task = TASKS.find((t) => t.name === name);
  if (!task) throw new SeqtuneError(`unknown demo task '${name}' (one of: ${TASK_NAMES.join(', ')})`, 'ERR_ARGUMENT');
  return task;
}

/** The answer of applying the tasks in order. */
export function applyChain(tasks: readonly Task[], input: string): string {
  return tasks.reduce((text, task) => task.apply(text), input);
}

/** `n` distinct words drawn from WORDS, space-separated. */
export function randomInput(rng: HostRng, n: number): string {
  const pool = [...WORDS];
  const picked: string[] = [];
  for (let i = 0; i < n; i++) picked.push(pool.splice(rng.int(pool.length), 1)[0]);
  return picked.join(' ');
}

/** Characters the demo's texts can contain: the char-level tokenizer's alphabet. */
export const ALPHABET = "\n abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;'-";
