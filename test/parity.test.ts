/**
 * The backend parity harness: every case in test/cases/*.ts runs on every available device and is
 * compared with the CPU, the oracle (ggml's test-backend-ops idea). A device lacking an op skips its
 * cases by name. Without a GPU, each case still runs on the CPU in every dtype it declares and must
 * give finite outputs, so the cases stay working for the day a GPU runs them.
 */
import t from 'tap';
import { devices } from '../lib/device';
import { opSupport } from '../lib/ops';
import { DType, scope } from '../lib/tensor';
import { loadCases, runParity } from './helpers/parity';
import { hostRng, testSeed } from './helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const cases = loadCases(hostRng(seed));
const support = opSupport();
const gpus = devices().gpus.filter((g) => g.usable);

t.test('every case names a registered op', async (t) => {
  for (const c of cases) t.ok(support.has(c.op), `${c.op} (${c.name}) is registered`);
});

t.test('cases run on the CPU in each of their dtypes', async (t) => {
  for (const c of cases) {
    for (const dtype of c.dtypes ?? (['f32', 'bf16'] as DType[])) {
      const outputs = await scope(async () => Promise.all(c.run('cpu', dtype).map((o) => o.toArray())));
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
    for (const o of await runParity(cases, device)) {
      const label = `${o.name}${o.dtype ? ` [${o.dtype}]` : ''}`;
      if (o.status === 'skip') t.skip(`${label}: ${o.detail}`);
      else t.ok(o.status === 'pass', o.status === 'pass' ? label : `${label}: ${o.detail}`);
    }
  });
}
