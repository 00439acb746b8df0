import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { packageRoot } from '../../lib/native';

// The tensor-core GEMM's index math (kernels/gemm/gemm_layout.h: swizzle, ldmatrix/mma fragments, the
// epilogue transpose, tile coverage and bounds for awkward shapes, K splits) checked on the host by
// test/kernels/gemm_layout.cpp, so it runs on machines without a GPU.
t.test('GEMM tile layout (host checks of kernels/gemm/gemm_layout.h)', (t) => {
  const source = path.join(packageRoot, 'test', 'kernels', 'gemm_layout.cpp');
  const binary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-layout-')), 'gemm_layout_test');
  const compilers = [process.env.CXX, 'g++', 'c++'].filter((c): c is string => !!c);
  let compiled: ReturnType<typeof spawnSync> | undefined;
  for (const cxx of compilers) {
    compiled = spawnSync(cxx, ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', `-I${packageRoot}`, source, '-o', binary], {
      encoding: 'utf8',
    });
    if (!compiled.error) break;
  }
  if (!compiled || compiled.error) {
    t.skip(`no C++ compiler found (tried ${compilers.join(', ')})`);
    t.end();
    return;
  }
  t.equal(compiled.status, 0, `compiles: ${String(compiled.stderr).slice(-2000)}`);
  if (compiled.status === 0) {
    const run = spawnSync(binary, [], { encoding: 'utf8', timeout: 300_000 });
    t.equal(run.signal, null, 'no crash');
    t.equal(run.status, 0, `all checks pass:\n${String(run.stdout).slice(-3000)}`);
    t.match(String(run.stdout), /checks, 0 failed/);
  }
  fs.rmSync(path.dirname(binary), { recursive: true, force: true });
  t.end();
});
