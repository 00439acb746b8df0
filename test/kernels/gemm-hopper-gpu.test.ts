import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import t from 'tap';
import { devices } from '../../lib/device';

// On every usable compute capability 9.0 GPU: the first large bf16 matmul runs the Hopper GEMM's
// one-time self-test (kernels/gemm_hopper_selftest.cu), which must pass (it prints a warning on
// stderr and keeps the kernel off otherwise), and the product must match the CPU. A child process
// runs it so that its stderr, where the native code reports, can be read. There is no binding for
// the self-test itself; test/cases/matmul.ts's bf16 cases take the kernel in the parity run.
const report = devices();
const hoppers = report.gpus.filter((g) => g.usable && g.computeCapability === '9.0');
const reason = report.cuda.unusableReason ?? 'no GPU of compute capability 9.0 (Hopper)';

t.test('the Hopper GEMM passes its self-test and matches the CPU', { skip: hoppers.length ? false : reason }, async (t) => {
  for (const gpu of hoppers) {
    const env = { ...process.env };
    delete env.SEQTUNE_GEMM_HOPPER;
    const child = spawnSync(process.execPath, [path.join(__dirname, 'gemm-hopper-child.js'), `cuda:${gpu.index}`], {
      encoding: 'utf8',
      timeout: 300_000,
      env,
    });
    t.equal(child.status, 0, `cuda:${gpu.index}: child exits 0 (${child.stderr.slice(-1000)})`);
    t.notMatch(child.stderr, /failed its self-test/, `cuda:${gpu.index}: self-test passed`);
    const { maxError, scale } = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}');
    // bf16 outputs of f32 sums: one rounding step apart at most.
    t.ok(maxError <= 2e-2 + 1e-2 * scale, `cuda:${gpu.index}: max |gpu - cpu| ${maxError} for values up to ${scale}`);
  }
});
