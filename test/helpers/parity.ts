/**
 * The parity harness's core, shared by test/parity.test.ts (tap, here and in CI) and
 * bench/gpu-parity.ts (plain node on the GPU machine, where tap is not carried): load every case of
 * test/cases/, run it on a device and on the CPU, compare with a dtype-aware tolerance.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { opSupport } from '../../lib/ops';
import { HostRng } from '../../lib/rng';
import { DType, scope } from '../../lib/tensor';
import { mismatch } from './compare';
import type { CaseFactory, OpCase } from './op-case';

export function loadCases(rng: HostRng): OpCase[] {
  const dir = path.join(__dirname, '..', 'cases');
  const cases: OpCase[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort()) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(dir, file)) as { cases: CaseFactory };
    cases.push(...mod.cases(rng));
  }
  return cases;
}

/** Tolerance of a device result against the CPU's, by the dtype the case ran in. */
export const deviceTolerance: Record<DType, { atol: number; rtol: number }> = {
  f64: { atol: 1e-9, rtol: 1e-9 },
  f32: { atol: 1e-4, rtol: 1e-4 },
  bf16: { atol: 2e-2, rtol: 1e-2 },
  f16: { atol: 2e-3, rtol: 2e-3 },
  i32: { atol: 0, rtol: 0 },
};

export interface ParityOutcome {
  name: string;
  op: string;
  dtype: DType | null;
  status: 'pass' | 'fail' | 'skip';
  detail: string;
}

/** Every case in every dtype on `device` against the CPU; cases whose op lacks a kernel there are skipped by name. */
export async function runParity(cases: OpCase[], device: string): Promise<ParityOutcome[]> {
  const support = opSupport();
  const outcomes: ParityOutcome[] = [];
  for (const c of cases) {
    if (device !== 'cpu' && !support.get(c.op)?.cuda) {
      outcomes.push({ name: c.name, op: c.op, dtype: null, status: 'skip', detail: `${c.op} has no CUDA kernel yet` });
      continue;
    }
    for (const dtype of c.dtypes ?? (['f32', 'bf16'] as DType[])) {
      const tol = c.tolerance?.[dtype] ?? deviceTolerance[dtype];
      try {
        const detail = await scope(async () => {
          const want = await Promise.all(c.run('cpu', dtype).map((o) => o.toArray()));
          const got = await Promise.all(c.run(device, dtype).map((o) => o.toArray()));
          if (got.length !== want.length) return `${got.length} outputs, want ${want.length}`;
          for (let i = 0; i < want.length; i++) {
            const bad = mismatch(got[i], want[i], tol);
            if (bad) return `output ${i}: ${bad.count} values off, first at ${bad.index}: got ${bad.got}, want ${bad.want}`;
          }
          return '';
        });
        outcomes.push({ name: c.name, op: c.op, dtype, status: detail ? 'fail' : 'pass', detail });
      } catch (error) {
        outcomes.push({ name: c.name, op: c.op, dtype, status: 'fail', detail: `threw ${(error as Error).message}` });
      }
    }
  }
  return outcomes;
}
