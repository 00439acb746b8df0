import * as path from 'node:path';
import t from 'tap';
import { buildHostCheck, runHostCheck as run } from './host-check';

// linearCrossEntropy's row math (kernels/loss/linear_cross_entropy_rows.h), the code its CUDA row
// kernels run after each chunk's logits GEMM, checked on the host against float64 by
// linear_ce_rows.cpp: the warp's fold and butterfly, the chunk-by-chunk online log-sum-exp, the
// loss with ignored and out-of-range labels, and the backward's dlogits. Broken variants must fail.

const built = buildHostCheck('linear_ce_rows', [path.join(__dirname, 'linear_ce_rows.cpp')]);

t.test('linearCrossEntropy rows: lse, loss and dlogits against float64', { skip: built.reason ?? false }, async (t) => {
  const result = run(built.binary!);
  t.same(result.failed, [], 'no check failed');
  for (const kind of ['lse', 'loss', 'dlogits']) {
    t.equal(result.passed.filter((l) => l.startsWith(`ok ${kind} `)).length, 4, `${kind}: four shapes`);
  }
  t.equal(result.status, 0, 'exit 0');
  // Why the logits scratch is f32: bf16-rounded logits move a row's loss by orders of magnitude more.
  const f32 = result.json.get('row_loss_error_f32')?.[0] as number;
  const bf16 = result.json.get('row_loss_error_bf16')?.[0] as number;
  t.ok(f32 < 1e-5, `f32 logits: per-row loss error ${f32} relative to 1 + |loss|`);
  t.ok(bf16 > 100 * f32, `bf16 logits would err ${bf16}`);
});

for (const fault of ['rescale', 'butterfly', 'label']) {
  t.test(`linearCrossEntropy rows: the ${fault} fault is caught`, { skip: built.reason ?? false }, async (t) => {
    const result = run(built.binary!, fault);
    t.ok(result.failed.length > 0, `${result.failed.length} checks failed`);
    t.equal(result.status, 1, 'exit 1');
  });
}
