import * as path from 'node:path';
import t from 'tap';
import { testSeed } from '../helpers/random';
import { buildHostCheck, runHostCheck as run } from './host-check';

// LoRA's hi/lo composition (kernels/gemm/lora_parts.h) checked on the host, no GPU needed:
// lora_parts.cpp builds the rank-r operands with the header's functions from fresh bf16 inputs,
// runs the products as the tensor cores do (bf16 operands, f32 sums) and compares y and dx with
// float64, on issue 15's failing parity shape (T=65 in=64 out=48 r=8). The parts must be at f32
// level; one bf16 copy (the forward's former form) must not be, so the check can tell them apart.

const seed = testSeed();
t.comment(`seed ${seed}`);
process.env.SEQTUNE_TEST_SEED = String(seed); // the binary draws its inputs from it

const built = buildHostCheck('lora_parts', [path.join(__dirname, 'lora_parts.cpp')]);

interface CaseErrors {
  case: string;
  newRel: number;
  newUlps: number;
  oldRel: number;
  oldUlps: number;
}

t.test('hi/lo parts carry the rank-r term at f32 level; one bf16 copy does not', { skip: built.reason ?? false }, async (t) => {
  const result = run(built.binary!);
  t.same(result.failed, [], 'no check failed');
  t.equal(result.status, 0, 'exit 0');
  const errors = result.json.get('errors') as CaseErrors[];
  t.equal(errors.length, 5, 'five cases: forward (bf16 / f32 adapters, dropout) and backward dx (bf16 / f32)');
  for (const e of errors) {
    // f32 sums over ~100 terms: ~2^-18 relative; one bf16 copy: up to 2^-9.
    t.ok(e.newRel < 2 ** -14, `${e.case}: parts ${e.newRel.toExponential(2)} relative`);
    t.ok(e.newUlps <= 1, `${e.case}: parts within one bf16 ulp of float64 (${e.newUlps.toFixed(2)})`);
    t.ok(e.oldRel > 16 * e.newRel, `${e.case}: one bf16 copy ${e.oldRel.toExponential(2)} relative, far worse`);
  }
  const cancelling = errors.filter((e) => e.case.includes('cancels'));
  t.equal(cancelling.length, 2, 'two near-cancelling cases');
  for (const e of cancelling) t.ok(e.oldUlps >= 2, `${e.case}: one bf16 copy off by ${e.oldUlps.toFixed(1)} bf16 ulps`);
});

t.test('the checks catch deliberately broken compositions', { skip: built.reason ?? false }, async (t) => {
  for (const fault of ['single', 'mask']) {
    const result = run(built.binary!, fault);
    t.equal(result.status, 1, `${fault}: exit 1`);
    t.equal(result.failed.filter((l) => l.includes('parts at f32 level')).length, 5, `${fault}: every case fails`);
  }
});
