// Child of profiler.test.ts: an arbitrary program (no training loop, no profiler calls) run with
// SEQTUNE_PROFILE set. It queues a few ops of shapes given on the command line and exits through
// process.exit, as CLIs do; the profile must still be written.
import { matmul, add } from '../../lib/ops';
import { Rng } from '../../lib/rng';
import { randn, sync } from '../../lib/tensor';

async function main(): Promise<void> {
  const [m, k, n] = process.argv.slice(2).map(Number);
  const rng = new Rng(m * 31 + n);
  const a = randn([m, k], { rng });
  const b = randn([k, n], { rng });
  const c = matmul(a, b);
  add(c, c);
  await sync('cpu');
  process.exit(0);
}

void main();
