/**
 * The backend parity harness: every case in test/cases/*.ts runs on every available device and is
 * compared with the CPU, the oracle (ggml's test-backend-ops idea). A device lacking an op skips its
 * cases by name. Without a GPU, each case still runs on the CPU in every dtype it declares and must
 * give finite outputs, so the cases stay working for the day a GPU runs them.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { devices } from '../lib/device';
import { opSupport } from '../lib/ops';
import { scope } from '../lib/tensor';
import type { DType } from '../lib/tensor';
import { assertClose } from './helpers/compare';
import type { CaseFactory, OpCase } from './helpers/op-case';
import { hostRng, testSeed } from './helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const casesDir = path.join(__dirname, 'cases');
const allCases: OpCase[] = [];
for (const file of fs.readdirSync(casesDir).filter((f) => f.endsWith('.ts')).sort()) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path.join(casesDir, file)) as { cases: CaseFactory };
  allCases.push(...mod.cases(rng));
}

// Tolerance of a GPU result against the CPU's, by the dtype the case ran in.
const gpuTolerance: Record<DType, { atol: number; rtol: number }> = {
  f64: { atol: 1e-9, rtol: 1e-9 },
  f32: { atol: 1e-4, rtol: 1e-4 },
  bf16: { atol: 2e-2, rtol: 1e-2 },
  f16: { atol: 2e-3, rtol: 2e-3 },
  i32: { atol: 0, rtol: 0 },
};

const support = opSupport();
const gpus = devices().gpus.filter((g) => g.usable);

t.test('every case names a registered op', async (t) => {
  for (const c of allCases) t.ok(support.has(c.op), `${c.op} (${c.name}) is registered`);
});

t.test('cases run on the CPU in each of their dtypes', async (t) => {
  for (const c of allCases) {
    for (const dtype of c.dtypes ?? (['f32', 'bf16'] as DType[])) {
      const outputs = await scope(async () => {
        const outs = c.run('cpu', dtype);
        return Promise.all(outs.map((o) => o.toArray()));
      });
      t.ok(
        outputs.every((o) => o.every((v) => Number.isFinite(v) || v === -Infinity)),
        `${c.name} [${dtype}] on cpu: finite outputs`,
      );
    }
  }
});

for (const gpu of gpus.length ? gpus : [null]) {
  const device = gpu ? `cuda:${gpu.index}` : 'cuda';
  t.test(`${device} matches the CPU`, { skip: gpu ? false : `no usable GPU: ${devices().cuda.unusableReason ?? 'none found'}` }, async (t) => {
    for (const c of allCases) {
      if (!support.get(c.op)?.cuda) {
        t.skip(`${c.name}: ${c.op} has no CUDA kernel yet`);
        continue;
      }
      for (const dtype of c.dtypes ?? (['f32', 'bf16'] as DType[])) {
        const tol = c.tolerance?.[dtype] ?? gpuTolerance[dtype];
        await scope(async () => {
          const want = await Promise.all(c.run('cpu', dtype).map((o) => o.toArray()));
          const got = await Promise.all(c.run(device, dtype).map((o) => o.toArray()));
          t.equal(got.length, want.length, `${c.name} [${dtype}]: output count`);
          want.forEach((w, i) => assertClose(t, got[i], w, tol, `${c.name} [${dtype}] output ${i}`));
        });
      }
    }
  });
}
