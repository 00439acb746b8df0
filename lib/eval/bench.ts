/**
 * The bench registry: a bench is a reader for its data files, a prompt builder and a scorer.
 * The five paper benches register themselves through it (benches/index.ts), and so can any other
 * scorer — the demo's synthetic tasks plug in here instead of being copied into lib/eval.
 */
import { SeqtuneError } from '../errors';
import { PromptParts } from './template';

export interface EvalItem {
  /** the data file's id field, else the 0-based index in the file (prefixed `<lang>/` when a folder of languages is read) */
  id: string;
  /** the file the item came from and the 1-based line it starts on, for error messages */
  file: string;
  line: number;
  /** the group metrics are broken down by (a language, a chain depth); '' for none */
  group: string;
  /** the gold answer as text; null when the bench has none (SeqEval) */
  gold: string | null;
}

export interface ItemScore {
  /** the answer read from the output; null when nothing could be read */
  extracted: string | null;
  /** null when the bench does not score correctness itself (SeqEval is judged separately) */
  correct: boolean | null;
  /** whether the output followed the sequential format (answer markers, a repeat); null when not measured */
  followed: boolean | null;
}

/** Per-bench settings from the CLI: MGSM's mode, GSM8K's exemplars file or MGSM's exemplars folder, XQuAD's English gold file. */
export interface BenchOptions {
  mode?: string;
  exemplars?: string;
  englishGold?: string;
}

export interface BenchDefinition<I extends EvalItem = EvalItem> {
  /** one line for --help */
  description: string;
  /** reads a data file (or a folder, where the bench says so); bad data is ERR_DATA with file:line */
  read(dataPath: string, options: BenchOptions): Promise<I[]>;
  /** the prompt before templating; may throw ERR_DATA when something only generation needs is missing */
  prompt(item: I): PromptParts;
  score(item: I, output: string): ItemScore;
  /** the protocol's generation budget, used when the caller gives none */
  maxNewTokens: number;
  /** named macro-averages over groups, e.g. XQuAD's "base" and "trans" language sets */
  averages?: Record<string, readonly string[]>;
}

const registry = new Map<string, BenchDefinition>();

export function registerBench<I extends EvalItem>(name: string, bench: BenchDefinition<I>): void {
  if (!/^[a-z][a-z0-9_-]*$/.test(name)) throw new SeqtuneError(`bench name '${name}' must be lower-case letters, digits, '-' or '_'`, 'ERR_ARGUMENT');
  // a second registration would silently change how existing runs are scored
  if (registry.has(name)) throw new SeqtuneError(`bench '${name}' is already registered`, 'ERR_ARGUMENT');
  registry.set(name, bench as unknown as BenchDefinition);
}

export function findBench(name: string): BenchDefinition | undefined {
  return registry.get(name);
}

export function benchNames(): string[] {
  return [...registry.keys()];
}
