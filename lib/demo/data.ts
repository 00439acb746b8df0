/**
 * The demo's training streams and held-out eval splits, built through the SIT data API
 * (lib/data/sequential): single-task records are plain Alpaca records; sequential ones come from
 * multiStepThenAnswer with repeatStep (repeat), translateStep (the cipher as the parallel
 * language) or the demo's own task steps (multi-step merges), so targets are labelled as in the
 * paper: `1. Reverse:\n...\n2. Shift:\n...\nResult: ...`.
 *
 * - IT: single-step instructions only (the seven tasks, and decoding the cipher on its own).
 * - SIT: the same mixture plus, for `seqFraction` of the examples, sequential instructions:
 *   repeat-then-task, decode-then-task and chains of 2 (and 3) tasks (all but count, see Task).
 * Held out from all training: the eval inputs (by their word multiset, so no permutation of an eval
 * input is trained on either), a few task pairs (never together in one training instruction), a
 * third of every phrasing bank: tasks, steps and frames, each held-out wording a new combination of
 * known words (lib/demo/phrasings; unless `heldoutPhrasings` is off: the shared-phrasings
 * analysis), and optionally whole tasks from sequential training (the unseen-task analysis).
 *
 * Eval splits: `single`; `chain2-unseen` and `chain3-unseen`, chains holding a held-out pair (a
 * composition never trained); `chain3-seen` and `decode-seen`, chain types SIT trains on (new
 * inputs, and new phrasings by default).
 */
import { AlpacaRecord } from '../data/records';
import { Frame, multiStepThenAnswer, pick, repeatStep, Step, translateStep } from '../data/sequential';
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { bankSide, FRAME_BANK, STEP_BANKS } from './phrasings';
import { applyChain, encode, randomInput, Task, TaskName, TASKS } from './tasks';
import { ExpectedStep } from './score';

export interface DemoDataOptions {
  seed: number;
  /** input length range (words) of training inputs */
  words: [number, number];
  /** input length range of eval inputs (the prompt-length analysis) */
  evalWords: [number, number];
  /** most tasks in one training instruction: 2, or 3 (chains of three) */
  trainSteps: number;
  /** fraction of SIT examples that are sequential */
  seqFraction: number;
  /** train on some of the phrasings and frames, evaluate on the others (the default) */
  heldoutPhrasings: boolean;
  /** tasks kept out of every sequential training example */
  unseenTasks: TaskName[];
  /** task pairs never together in a training instruction */
  heldoutPairCount: number;
  /** items per eval split */
  items: number;
}

/** One eval item: what the synthetic bench reads (one JSON line each). */
export interface DemoItem {
  id: string;
  split: string;
  instruction: string;
  input: string;
  /** the intermediate steps the instruction asks for, in order, with their exact texts */
  steps: ExpectedStep[];
  gold: string;
}

export interface EvalSplit {
  name: string;
  description: string;
  items: DemoItem[];
}

/** Phrasings in use: all of them, or a train/eval partition of each bank. */
interface Phrasings {
  task: (t: Task) => readonly string[];
  repeat: readonly string[];
  translate: readonly string[];
  frames: readonly Frame[];
}

function phrasings(heldout: boolean, side: 'train' | 'eval'): Phrasings {
  return {
    task: (t) => bankSide(t.phrasing, heldout, side),
    repeat: bankSide(STEP_BANKS.repeat, heldout, side),
    translate: bankSide(STEP_BANKS.translate, heldout, side),
    frames: bankSide(FRAME_BANK, heldout, side),
  };
}

const capitalised = (phrase: string) => `${phrase.charAt(0).toUpperCase()}${phrase.slice(1)}:`;

/** A task's single-step record: `Reverse the word order: cat dog` -> `dog cat`. */
function singleRecord(task: Task, input: string, p: Phrasings, rng: HostRng, output = task.apply(input)): AlpacaRecord {
  return { instruction: capitalised(pick(p.task(task), rng)), input, output };
}

function taskStep(task: Task, text: string, p: Phrasings, rng: HostRng): Step {
  return { label: task.label, phrase: pick(p.task(task), rng), text };
}

/** A training record with what the scorer expects of an answer to it. */
interface Built {
  record: AlpacaRecord;
  steps: ExpectedStep[];
  gold: string;
}

/** A sequential record from any intermediate steps; the base record's output is the final answer. */
function sequential(base: AlpacaRecord, steps: Step[], p: Phrasings, rng: HostRng): Built {
  const record = multiStepThenAnswer(base, steps, { frame: pick(p.frames, rng) });
  if (!record) throw new SeqtuneError('multiStepThenAnswer refused a demo record', 'ERR_INTERNAL');
  return { record, steps: steps.map((s) => ({ label: s.label, text: s.text })), gold: base.output };
}

/** tasks[0] then tasks[1] ... on input: the first ones are labelled steps, the last one the result. */
function chainRecord(tasks: readonly Task[], input: string, p: Phrasings, rng: HostRng): Built {
  const steps = tasks.slice(0, -1).map((t, i) => taskStep(t, applyChain(tasks.slice(0, i + 1), input), p, rng));
  const last = tasks[tasks.length - 1];
  return sequential(singleRecord(last, input, p, rng, applyChain(tasks, input)), steps, p, rng);
}

function repeatRecord(task: Task, input: string, p: Phrasings, rng: HostRng): Built {
  const base = singleRecord(task, input, p, rng);
  return sequential(base, [repeatStep(base, pick(p.repeat, rng))!], p, rng);
}

function decodeRecord(task: Task, input: string, p: Phrasings, rng: HostRng): Built {
  const base = singleRecord(task, input, p, rng);
  return sequential(base, [translateStep(base, encode(input), pick(p.translate, rng))!], p, rng);
}

const pairKey = (a: TaskName, b: TaskName) => [a, b].sort().join('+');

/** Chains of `length` distinct tasks, in a fixed order. */
function allChains(length: number, allowed: readonly Task[]): Task[][] {
  const out: Task[][] = [];
  const grow = (chain: Task[]) => {
    if (chain.length === length) {
      out.push(chain);
      return;
    }
    for (const t of allowed) {
      if (chain.includes(t)) continue;
      grow([...chain, t]);
    }
  };
  grow([]);
  return out;
}

/**
 * Unordered task pairs held out of training, drawn from the seed, such that every task keeps at
 * least two training partners (so each is still seen first and last in some training chain).
 */
export function chooseHeldoutPairs(seed: number, count: number, exclude: readonly TaskName[] = []): Array<[TaskName, TaskName]> {
  const tasks = TASKS.filter((t) => t.sequential && !exclude.includes(t.name));
  const candidates = allChains(2, tasks)
    .map(([a, b]) => [a.name, b.name].sort() as [TaskName, TaskName])
    .filter(([a, b], i, all) => all.findIndex(([x, y]) => x === a && y === b) === i);
  const rng = new HostRng(seed ^ 0x9a1e);
  rng.shuffle(candidates);
  const partners = new Map(tasks.map((t) => [t.name, candidates.filter((c) => c.includes(t.name)).length]));
  const chosen: Array<[TaskName, TaskName]> = [];
  for (const [a, b] of candidates) {
    if (chosen.length === count) break;
    if (partners.get(a)! <= 2 || partners.get(b)! <= 2) continue;
    chosen.push([a, b]);
    partners.set(a, partners.get(a)! - 1);
    partners.set(b, partners.get(b)! - 1);
  }
  if (chosen.length < count) throw new SeqtuneError(`cannot hold out ${count} task pairs and keep every task in two training pairs`, 'ERR_ARGUMENT');
  return chosen;
}

function hasPair(chain: readonly Task[], heldout: ReadonlySet<string>): boolean {
  return chain.some((a, i) => chain.some((b, j) => i < j && heldout.has(pairKey(a.name, b.name))));
}

export interface DemoData {
  options: DemoDataOptions;
  heldoutPairs: Array<[TaskName, TaskName]>;
  splits: EvalSplit[];
  /** an endless, seeded stream of training records for one model */
  trainRecords(kind: 'it' | 'sit'): Generator<AlpacaRecord>;
}

/** An input's word multiset: inputs with the same key are permutations of each other. */
export const wordMultiset = (input: string): string => input.split(' ').sort().join(' ');

function lengthIn(rng: HostRng, [lo, hi]: [number, number]): number {
  return lo + rng.int(hi - lo + 1);
}

export function buildDemoData(options: DemoDataOptions): DemoData {
  const { seed } = options;
  if (!(options.trainSteps === 2 || options.trainSteps === 3)) throw new SeqtuneError(`trainSteps must be 2 or 3, got ${options.trainSteps}`, 'ERR_ARGUMENT');
  for (const [lo, hi] of [options.words, options.evalWords]) {
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 2 && hi >= lo && hi <= 8)) throw new SeqtuneError(`word ranges must be integers with 2 <= min <= max <= 8, got ${lo}-${hi}`, 'ERR_ARGUMENT');
  }
  const unseen = new Set(options.unseenTasks);
  const heldoutPairs = chooseHeldoutPairs(seed, options.heldoutPairCount, options.unseenTasks);
  const heldout = new Set(heldoutPairs.map(([a, b]) => pairKey(a, b)));
  const seqTasks = TASKS.filter((t) => t.sequential && !unseen.has(t.name));
  const trainChains = (n: number) => allChains(n, seqTasks).filter((c) => !hasPair(c, heldout));
  const chains2 = trainChains(2);
  const chains3 = trainChains(3);
  const trainP = phrasings(options.heldoutPhrasings, 'train');
  const evalP = phrasings(options.heldoutPhrasings, 'eval');

  // Eval splits first: their inputs, in any word order, are then kept out of training.
  const evalInputs = new Set<string>();
  const evalRng = new HostRng(seed ^ 0xe7a1);
  const split = (name: string, description: string, make: (input: string) => Built): EvalSplit => {
    const items: DemoItem[] = [];
    for (let i = 0; i < options.items; i++) {
      const input = randomInput(evalRng, lengthIn(evalRng, options.evalWords));
      evalInputs.add(wordMultiset(input));
      const { record, steps, gold } = make(input);
      items.push({ id: `${name}/${i}`, split: name, instruction: record.instruction, input: record.input, steps, gold });
    }
    return { name, description, items };
  };
  const unseenChains = (n: number) => allChains(n, seqTasks).filter((c) => hasPair(c, heldout));
  const unseenChains2 = unseenChains(2);
  const unseenChains3 = unseenChains(3);
  const splits: EvalSplit[] = [
    split('single', 'one task on a plain input', (input) => {
      const record = singleRecord(pick(TASKS, evalRng), input, evalP, evalRng);
      return { record, steps: [], gold: record.output };
    }),
    split('chain2-unseen', '2-task chains of pairs never together in training', (input) => chainRecord(pick(unseenChains2, evalRng), input, evalP, evalRng)),
    split('chain3-unseen', '3-task chains holding a pair never together in training', (input) => chainRecord(pick(unseenChains3, evalRng), input, evalP, evalRng)),
    // with --train-steps 2 no 3-task chain is trained, so the split is not called seen
    options.trainSteps === 3
      ? split('chain3-seen', '3-task chains of a kind SIT trains on', (input) => chainRecord(pick(chains3, evalRng), input, evalP, evalRng))
      : split('chain3', '3-task chains (SIT trains on 2-task chains only)', (input) => chainRecord(pick(chains3, evalRng), input, evalP, evalRng)),
    split('decode-seen', 'an encoded input: decode, then one task (a kind SIT trains on)', (input) => decodeRecord(pick(seqTasks, evalRng), input, evalP, evalRng)),
  ];
  if (unseen.size > 0) {
    const withUnseen = allChains(2, TASKS.filter((t) => t.sequential)).filter((c) => c.some((t) => unseen.has(t.name)));
    splits.push(split('unseen-task', '2-task chains with a task never in sequential training', (input) => chainRecord(pick(withUnseen, evalRng), input, evalP, evalRng)));
  }

  function* trainRecords(kind: 'it' | 'sit'): Generator<AlpacaRecord> {
    const rng = new HostRng(seed ^ (kind === 'it' ? 0x17 : 0x517));
    const freshInput = () => {
      for (;;) {
        const input = randomInput(rng, lengthIn(rng, options.words));
        if (!evalInputs.has(wordMultiset(input))) return input;
      }
    };
    for (;;) {
      const input = freshInput();
      if (kind === 'it' || rng.uniform() >= options.seqFraction) {
        // the single-step mixture: each task, and decoding on its own, equally often
        const which = rng.int(TASKS.length + 1);
        yield which < TASKS.length
          ? singleRecord(TASKS[which], input, trainP, rng)
          : { instruction: capitalised(pick(trainP.translate, rng)), input: encode(input), output: input };
        continue;
      }
      const u = rng.uniform();
      const useChains3 = options.trainSteps === 3 && chains3.length > 0;
      if (u < 0.2) yield repeatRecord(pick(seqTasks, rng), input, trainP, rng).record;
      else if (u < 0.5) yield decodeRecord(pick(seqTasks, rng), input, trainP, rng).record;
      else if (u < 0.8 || !useChains3) yield chainRecord(pick(chains2, rng), input, trainP, rng).record;
      else yield chainRecord(pick(chains3, rng), input, trainP, rng).record;
    }
  }

  return { options, heldoutPairs, splits, trainRecords };
}
