/**
 * A CLI command: a name, its flags, and a run function that calls the exported library function
 * doing the work (so scripts can do everything the CLI does). Parsing uses node's util.parseArgs in
 * strict mode: an unknown flag or a missing value is a one-line error, not a stack trace.
 */
import { parseArgs, ParseArgsConfig } from 'node:util';
import { SeqtuneError } from '../errors';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: Options;
  /** returns the process exit code */
  run(values: Values, positionals: string[]): Promise<number>;
}

export function parseCommandArgs(command: Command, argv: string[]): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Values, positionals };
  } catch (error) {
    throw new SeqtuneError(`${(error as Error).message}\nusage: ${command.usage}`, 'ERR_ARGUMENT');
  }
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

export function stringFlag(values: Values, name: string): string | undefined {
  const raw = values[name];
  return typeof raw === 'string' ? raw : undefined;
}

export function requireFlag(values: Values, name: string, command: Command): string {
  const v = stringFlag(values, name);
  if (v === undefined) throw new SeqtuneError(`--${name} is required\nusage: ${command.usage}`, 'ERR_ARGUMENT');
  return v;
}
