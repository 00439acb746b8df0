import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import t from 'tap';
import { devices } from '../../lib/device';

// On every usable compute capability 9.0 GPU: the first large bf16 matmul and the first packed
// bf16 attention run the Hopper kernels' one-time self-tests (kernels/hopper/*_selftest.cu), which
// must pass (each prints a warning on stderr and keeps its kernel off otherwise), and the results
// must match the CPU. A child process runs each so that its stderr, where the native code
// reports, can be read. There is no binding for the self-tests themselves; test/cases' bf16 matmul
// and attention cases take the kernels in the parity run.
const report = devices();
const hoppers = report.gpus.filter((g) => g.usable && g.computeCapability === '9.0');
const reason = report.cuda.unusableReason ?? 'no GPU of compute capability 9.0 (Hopper)';

// Both results are f32 sums rounded to bf16 once (the attention's P once more): a few steps of
// bf16 rounding at the largest magnitude.
const kernels = [
  { what: 'gemm', label: 'GEMM passes its self-test', tolerance: (scale: number) => 2e-2 + 1e-2 * scale },
  {
    what: 'attention',
    label: 'attention forward and backward pass their self-tests',
    tolerance: (scale: number) => 2e-2 + 2e-2 * scale,
  },
];

for (const { what, label, tolerance } of kernels) {
  t.test(`the Hopper ${label}, and the results match the CPU`, { skip: hoppers.length ? false : reason }, async (t) => {
    for (const gpu of hoppers) {
      const env = { ...process.env };
      delete env.SEQTUNE_GEMM_HOPPER;
      delete env.SEQTUNE_ATTENTION_HOPPER;
      const child = spawnSync(process.execPath, [path.join(__dirname, 'hopper-child.js'), `cuda:${gpu.index}`, what], {
        encoding: 'utf8',
        timeout: 300_000,
        env,
      });
      t.equal(child.status, 0, `cuda:${gpu.index}: child exits 0 (${child.stderr.slice(-1000)})`);
      t.notMatch(child.stderr, /failed its self-test/, `cuda:${gpu.index}: self-test passed`);
      const { maxError, scale } = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}');
      t.ok(maxError <= tolerance(scale), `cuda:${gpu.index}: max |gpu - cpu| ${maxError} for values up to ${scale}`);
    }
  });
}
