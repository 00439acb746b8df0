/**
 * One parity case: an op call on fixed host inputs that can run on any device. test/cases/*.ts
 * export `cases(rng)` lists of these; test/parity.test.ts runs every case on every available
 * device and compares with the CPU (ops a device lacks are skipped by name), the way ggml's
 * test-backend-ops treats its CPU backend as the oracle.
 */
import type { HostRng } from '../../lib/rng';
import type { DType, Tensor } from '../../lib/tensor';

export interface OpCase {
  /** the registered op this case exercises (a device lacking it skips the case by this name) */
  op: string;
  /** what is being run, with sizes, for messages */
  name: string;
  /** floating dtypes the case supports (default: f32 and bf16) */
  dtypes?: DType[];
  /** creates the inputs on `device` in `dtype` from the case's host arrays, runs the op, returns the outputs to compare */
  run(device: string, dtype: DType): Tensor[];
  /** overrides the default tolerance for GPU-vs-CPU comparison */
  tolerance?: Partial<Record<DType, { atol: number; rtol: number }>>;
}

export type CaseFactory = (rng: HostRng) => OpCase[];
