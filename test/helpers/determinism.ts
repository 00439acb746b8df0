/**
 * Thread-count determinism checks: the CPU thread count is fixed per process
 * (SEQTUNE_NUM_THREADS), so a test re-runs a child file under several counts and compares the
 * SHA-256 of every output's bytes. A child file defines its outputs and calls runDigestChild.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Tensor } from '../../lib/tensor';

/** Runs `childFile` with `threads` CPU threads and its arguments; returns output name → SHA-256. */
export function digestsInChild(childFile: string, threads: number, args: string[]): Record<string, string> {
  const loaders = process.execArgv.filter((arg) => !arg.includes('processinfo'));
  const stdout = execFileSync(process.execPath, [...loaders, childFile, ...args], {
    env: { ...process.env, SEQTUNE_NUM_THREADS: String(threads) },
    encoding: 'utf8',
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as Record<string, string>;
}

/** The child's side: prints the digests of outputsFor(group, seed) for the argv it was given. */
export function runDigestChild(outputsFor: (group: string, seed: number) => Record<string, Tensor>): void {
  const [group, seed] = process.argv.slice(2);
  (async () => {
    const digests: Record<string, string> = {};
    for (const [name, t] of Object.entries(outputsFor(group, Number(seed)))) {
      digests[name] = createHash('sha256').update(Buffer.from(await t.toBytes())).digest('hex');
    }
    process.stdout.write(`${JSON.stringify(digests)}\n`);
  })().catch((error) => {
    process.stderr.write(`${error}\n`);
    process.exit(1);
  });
}
