/**
 * The demo's phrasing banks: how a task, a step (repeat, translate) and a sequential frame are put
 * into words. Each bank is every template with every object, 3 x 3; when phrasings are held out
 * (the default), training uses six of the nine and evaluation the diagonal third (template i with
 * object j where i + j = 2 mod 3), so every evaluated wording is a new combination of words that
 * training shows in that role. The models are trained from scratch and know no language beyond
 * their training data: a held-out synonym never seen in training ("advance" for shift, "to begin"
 * for "first") would test nothing either model could know.
 */
import type { Frame } from '../data/sequential';
import { SeqtuneError } from '../errors';

export interface Bank<T> {
  all: readonly T[];
  /** the evaluation third when phrasings are held out */
  heldout: readonly T[];
}

function combinationBank<A, B, T>(as: readonly A[], bs: readonly B[], combine: (a: A, b: B) => T): Bank<T> {
  if (as.length !== 3 || bs.length !== 3) throw new SeqtuneError('a demo phrasing bank is 3 x 3', 'ERR_INTERNAL');
  const all: T[] = [];
  const heldout: T[] = [];
  as.forEach((a, i) =>
    bs.forEach((b, j) => {
      all.push(combine(a, b));
      if ((i + j) % 3 === 2) heldout.push(all[all.length - 1]);
    }),
  );
  return { all, heldout };
}

/** Templates with an `{o}` slot, each with each object. */
export const phrasingBank = (templates: readonly string[], objects: readonly string[]): Bank<string> =>
  combinationBank(templates, objects, (template, object) => template.replace('{o}', object));

const INPUTS = ['the input', 'below input', 'the given input'];

export const STEP_BANKS = {
  repeat: phrasingBank(['repeat {o}', 'restate {o}', 'reiterate {o}'], INPUTS),
  translate: phrasingBank(['translate {o} into English', 'render {o} in English', 'put {o} into English'], INPUTS),
};

/** `First reverse the word order, then sort the words`: a lead, and one connective between steps. */
export const FRAME_BANK: Bank<Frame> = combinationBank(['First ', 'Please first ', 'To start, '], [', then ', ', and then ', '; after that, '], (lead, then) => ({
  lead,
  join: then,
  last: then,
}));

/** The part of a bank one side uses: all of it when phrasings are shared. */
export function bankSide<T>(bank: Bank<T>, heldout: boolean, side: 'train' | 'eval'): readonly T[] {
  if (!heldout) return bank.all;
  return side === 'eval' ? bank.heldout : bank.all.filter((x) => !bank.heldout.includes(x));
}
