/**
 * A CLI command: a name, its flags, and a run function that calls the exported library function
 * doing the work (so scripts can do everything the CLI does). Parsing uses node's util.parseArgs in
 * strict mode: an unknown flag or a missing value is a one-line error, not a stack trace.
 */
import { parseArgs, ParseArgsConfig } from 'node:util';
import { SeqtuneError } from '../errors';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** A command's flags from their names: each of `strings` takes a value, each of `booleans` none. */
export function flagOptions(strings: string[], booleans: string[] = []): Options {
  const options: Options = {};
  for (const name of strings) options[name] = { type: 'string' };
  for (const name of booleans) options[name] = { type: 'boolean' };
  return options;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: Options;
  /** positional arguments it takes (none when absent: a stray word is an error, not ignored) */
  positionals?: { max: number };
  /** flags that contradict each other: giving both is refused, naming the two */
  conflicts?: Array<[string, string, string?]>;
  /** returns the process exit code */
  run(values: Values, positionals: string[]): Promise<number>;
}

/**
 * Parses a command's flags. Beyond parseArgs' strict mode: a flag given twice (unless it takes
 * several values) is refused rather than the last one silently winning, as are stray positional
 * arguments and the command's declared conflicting pairs.
 */
export function parseCommandArgs(command: Command, argv: string[]): { values: Values; positionals: string[] } {
  const usage = `\nusage: ${command.usage}`;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
  } catch (error) {
    throw new SeqtuneError(`${(error as Error).message}${usage}`, 'ERR_ARGUMENT');
  }
  const { positionals, tokens } = parsed;
  const values = parsed.values as Values;
  const seen = new Map<string, number>();
  for (const token of tokens) {
    if (token.kind !== 'option' || command.options[token.name]?.multiple) continue;
    seen.set(token.name, (seen.get(token.name) ?? 0) + 1);
    if (seen.get(token.name) === 2) throw new SeqtuneError(`--${token.name} is given more than once; give it once${usage}`, 'ERR_ARGUMENT');
  }
  const max = command.positionals?.max ?? 0;
  if (positionals.length > max) {
    const stray = positionals.slice(max).map((p) => `'${p}'`).join(', ');
    throw new SeqtuneError(`unexpected argument${positionals.length - max > 1 ? 's' : ''} ${stray} (flags start with --)${usage}`, 'ERR_ARGUMENT');
  }
  for (const [a, b, why] of command.conflicts ?? []) {
    if (values[a] !== undefined && values[b] !== undefined) {
      throw new SeqtuneError(`--${a} and --${b} cannot be used together${why ? ` (${why})` : ''}; give one${usage}`, 'ERR_ARGUMENT');
    }
  }
  return { values, positionals };
}

/** A string flag as a number, with the flag named in the error. */
export function numberFlag(values: Values, name: string, fallback?: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n)) {
    throw new SeqtuneError(`--${name} must be a number, got '${String(raw)}'`, 'ERR_ARGUMENT');
  }
  return n;
}

/** A string flag as a positive integer (a count, a length), with the flag named in the error. */
export function positiveIntegerFlag(values: Values, name: string, fallback?: number): number | undefined {
  const n = numberFlag(values, name, fallback);
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new SeqtuneError(`--${name} must be a positive integer, got ${n}`, 'ERR_ARGUMENT');
  return n;
}

export function stringFlag(values: Values, name: string): string | undefined {
  const raw = values[name];
  return typeof raw === 'string' ? raw : undefined;
}

export function requireFlag(values: Values, name: string, command: Command): string {
  const v = stringFlag(values, name);
  if (v === undefined) throw new SeqtuneError(`--${name} is required\nusage: ${command.usage}`, 'ERR_ARGUMENT');
  return v;
}
