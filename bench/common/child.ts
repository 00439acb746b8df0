/**
 * Running one measurement per child process (a seqtune worker or a Python peer under bench/peer/),
 * so each starts with an empty GPU and its peak memory is its own; the options and time budget of
 * the scripts that do (bench/train.ts, bench/generate.ts, bench/train-parity.ts).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { packageRoot } from '../../lib/native';

export interface ChildResult<T> {
  result?: T;
  error?: string;
}

/**
 * Runs a command that prints its result as the last line of stdout (JSON); stdin gets `input`,
 * stderr passes through (progress). A timeout, a crash or unparsable output becomes `error`.
 */
export function runChild<T>(command: string, args: string[], input: unknown, timeoutSec: number): ChildResult<T> {
  if (timeoutSec <= 0) return { error: 'skipped: the time budget (--deadline-s) is spent' };
  const run = spawnSync(command, args, {
    input: JSON.stringify(input),
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'inherit'],
    timeout: timeoutSec * 1000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 << 20,
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return { error: `timed out after ${Math.round(timeoutSec)} s` };
  if (run.error) return { error: `${command} not runnable: ${run.error.message}` };
  const last = run.stdout.trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(last) as T & { error?: string };
    return parsed.error ? { error: parsed.error } : { result: parsed };
  } catch {
    return { error: `${path.basename(command)} exited ${run.status ?? run.signal} without a result: ${run.stdout.trim().split('\n').slice(-3).join(' | ')}` };
  }
}

/** The command-line options bench/train.ts, bench/generate.ts and bench/train-parity.ts share; spread into parseArgs' options. */
export const commonOptions = {
  worker: { type: 'boolean', default: false },
  device: { type: 'string', default: 'cuda:0' },
  'no-peer': { type: 'boolean', default: false },
  python: { type: 'string', default: 'python3' },
  'deadline-s': { type: 'string', default: '450' },
} as const;

/** parseArgs options that take a value, from their defaults. */
export function withDefaults<T extends Record<string, string>>(defaults: T): { [K in keyof T]: { type: 'string'; default: string } } {
  return Object.fromEntries(Object.entries(defaults).map(([name, value]) => [name, { type: 'string', default: value }])) as {
    [K in keyof T]: { type: 'string'; default: string };
  };
}

/**
 * Seconds the next child may run: what is left of --deadline-s (counted from this call), at most
 * --child-timeout-s where the script has that option.
 */
export function timeBudget(values: { 'deadline-s': string; 'child-timeout-s'?: string }): () => number {
  const deadline = Date.now() + Number(values['deadline-s']) * 1000;
  const cap = values['child-timeout-s'] === undefined ? Infinity : Number(values['child-timeout-s']);
  return () => Math.min(cap, (deadline - Date.now()) / 1000);
}

/** The Python peer bench/peer/<script> as a child of --python (runChild), or `skipped (--no-peer)`. */
export function runPeer<T>(values: { 'no-peer': boolean; python: string }, script: string, input: unknown, timeoutSec: number): ChildResult<T> {
  return values['no-peer'] ? { error: 'skipped (--no-peer)' } : runChild<T>(values.python, [peerScript(script)], input, timeoutSec);
}

/** This script again as a worker child (`--worker`), reading its spec from stdin. */
export function runWorker<T>(script: string, spec: unknown, timeoutSec: number): ChildResult<T> {
  return runChild<T>(process.execPath, [script, '--worker'], spec, timeoutSec);
}

export async function readStdinJson<T>(): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
}

/** Worker entry: the result (or the error) as one JSON line on stdout. */
export function workerMain<S, R>(fn: (spec: S) => Promise<R>): void {
  readStdinJson<S>()
    .then(fn)
    .then(
      (r) => console.log(JSON.stringify(r)),
      (e: unknown) => console.log(JSON.stringify({ error: e instanceof Error ? e.message : String(e) })),
    );
}

export function peerScript(name: string): string {
  return path.join(packageRoot, 'bench', 'peer', name);
}
