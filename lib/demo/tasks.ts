/**
 * The demo's world: short inputs of lowercase words, seven primitive text tasks with several
 * natural-language phrasings each, and a fixed letter substitution that plays the foreign language
 * (its "translation into English" is decoding). Everything is a pure function, so the data, the
 * gold answers and the scorer agree by construction and tests can check them independently.
 */
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { Bank, phrasingBank } from './phrasings';

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
  /** short imperative phrasings (lower case, no final punctuation): the verbalisation bank */
  phrasing: Bank<string>;
  apply(text: string): string;
  /**
   * may be a step of a sequential instruction; count may not: every other task keeps the number
   * of words, so a chain ending in count could be answered right with every earlier step wrong
   */
  sequential: boolean;
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
    phrasing: phrasingBank(['reverse {o}', 'flip {o}', 'invert {o}'], ['the word order', 'the order of the words', 'the sequence of words']),
    apply: (text) => words(text).reverse().join(' '),
    sequential: true,
  },
  {
    name: 'uppercase',
    label: 'Uppercase',
    phrasing: phrasingBank(['uppercase {o}', 'capitalise {o}', 'write {o} in capitals'], ['the text', 'every letter', 'all the letters']),
    apply: (text) => text.toUpperCase(),
    sequential: true,
  },
  {
    name: 'sort',
    label: 'Sort',
    phrasing: phrasingBank(['sort {o}', 'alphabetise {o}', 'put {o} in abc order'], ['the words', 'the list of words', 'all the words']),
    // code-point order: the texts are all one case, so this is alphabetical and locale-free
    apply: (text) => words(text).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(' '),
    sequential: true,
  },
  {
    name: 'dropvowels',
    label: 'Drop vowels',
    phrasing: phrasingBank(['drop {o}', 'remove {o}', 'delete {o}'], ['the vowels', 'every vowel', 'all the vowels']),
    apply: (text) => [...text].filter((c) => !isVowel(c)).join(''),
    sequential: true,
  },
  {
    name: 'shift',
    label: 'Shift',
    phrasing: phrasingBank(['shift {o} by one', 'advance {o}', 'move {o} up one'], ['each letter', 'every letter', 'all the letters']),
    apply: (text) => [...text].map(shiftLetter).join(''),
    sequential: true,
  },
  {
    name: 'mirror',
    label: 'Mirror',
    phrasing: phrasingBank(['mirror {o}', 'spell {o} backwards', 'write {o} back to front'], ['each word', 'every word', 'each of the words']),
    apply: (text) => words(text).map((w) => [...w].reverse().join('')).join(' '),
    sequential: true,
  },
  {
    name: 'count',
    label: 'Count',
    phrasing: phrasingBank(['count {o}', 'tally {o}', 'give the number of {o}'], ['the words', 'the input words', 'all the words']),
    apply: (text) => String(words(text).length),
    sequential: false,
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
