/**
 * Bounding how far the JS thread queues ahead of the device (SEQTUNE_MAX_QUEUED_OPS), together
 * with the backward releasing each block's tensors once its backward is queued: on the CPU, where
 * the JS thread otherwise queues a whole step before the device has run much of it, the bound
 * holds (no op saw a deeper queue, by the profiler's record) and the step's peak memory falls.
 * Each bound runs in its own process (the addon reads it once).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { testSeed } from '../helpers/random';

const seed = testSeed() % 100000;
t.comment(`seed ${seed}`);

function run(bound: number): { peak: number; depth: number; ops: number } {
  const child = spawnSync(process.execPath, [...process.execArgv, path.join(__dirname, 'run-ahead-child.ts'), String(seed)], {
    env: { ...process.env, SEQTUNE_MAX_QUEUED_OPS: String(bound), SEQTUNE_PROFILE: '' },
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`child failed (${child.status}): ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!);
}

t.test('the queue bound holds and lowers the peak of a training step', async (t) => {
  const free = run(0);
  const bounded = run(8);
  t.comment(`unbounded: peak ${free.peak} B, deepest queue ${free.depth}; bound 8: peak ${bounded.peak} B, deepest queue ${bounded.depth}; ${free.ops} ops per step`);
  t.ok(free.depth > 8, 'unbounded, the JS thread runs ahead');
  t.ok(bounded.depth <= 8, 'bounded, no op was queued behind more than 8');
  t.ok(bounded.peak < 0.85 * free.peak, 'the bounded step needs markedly less memory');
});
