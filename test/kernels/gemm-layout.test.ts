import * as path from 'node:path';
import t from 'tap';
import { buildHostCheck, runHostCheck } from './host-check';

// The tensor-core GEMM's index math (kernels/gemm/gemm_layout.h: swizzle, ldmatrix/mma fragments, the
// epilogue transpose, tile coverage and bounds for awkward shapes, K splits) checked on the host by
// gemm_layout.cpp, so it runs on machines without a GPU.
const built = buildHostCheck('gemm_layout', [path.join(__dirname, 'gemm_layout.cpp')]);

t.test('GEMM tile layout (host checks of kernels/gemm/gemm_layout.h)', { skip: built.reason ?? false }, async (t) => {
  const result = runHostCheck(built.binary!);
  t.same(result.failed, [], 'no check failed');
  const summary = /ok (\d+) checks, 0 failed/.exec(result.passed.join('\n'));
  t.ok(summary && Number(summary[1]) > 1000, `the checks ran: ${summary?.[0] ?? 'no summary line'}`);
  t.equal(result.status, 0, 'exit 0');
});
