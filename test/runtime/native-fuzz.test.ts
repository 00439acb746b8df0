import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { testSeed } from '../helpers/random';

// Random garbage into every op, in a child process so a crash shows up as a signal, not a dead runner.
t.test('no op call reachable from JS aborts or crashes the process', async (t) => {
  for (let round = 0; round < 3; round++) {
    const seed = testSeed() + round;
    const child = spawnSync(process.execPath, [path.join(__dirname, 'fuzz-child.js'), String(seed), '1500'], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, SEQTUNE_CPU_MAX_ALLOC_BYTES: String(1 << 30) },
    });
    t.equal(child.signal, null, `seed ${seed}: no signal (${child.stderr.slice(-500)})`);
    t.equal(child.status, 0, `seed ${seed}: clean exit (${child.stderr.slice(-500)})`);
    const counts = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { ran: number; thrown: number };
    t.ok(counts.ran + counts.thrown === 1500, `seed ${seed}: ${counts.ran} calls ran, ${counts.thrown} rejected`);
  }
});
