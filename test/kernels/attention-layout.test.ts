import * as path from 'node:path';
import t from 'tap';
import { buildHostCheck, root, runHostCheck as run } from './host-check';

// The CUDA attention kernels checked on the host, no GPU needed: their index math
// (kernels/attention/flash_attention_layout.h) and the kernel bodies themselves, run by a CPU emulator of
// CUDA threads, ldmatrix, mma and cp.async (and for the Hopper attention kernels and GEMM
// mbarriers, TMA, wgmma and named barriers) against a float64 reference. attention_layout*.cpp is
// compiled with g++ and run; see the .cpp files for what is checked. Each deliberately broken
// variant must be caught, so the checks can fail.
const sources = [
  ...['attention_layout.cpp', 'attention_layout_tiles.cpp', 'attention_layout_kernels.cpp', 'attention_layout_simt.cpp', 'attention_layout_emulator.cpp'].map(
    (f) => path.join(__dirname, f),
  ),
  path.join(root, 'kernels', 'common', 'dtype.cpp'),
];

// The emulator's fibers switch stacks with _longjmp, which glibc's fortified build refuses; CUDA's
// `#pragma unroll` means nothing to g++.
const built = buildHostCheck('attention_layout', sources, ['-U_FORTIFY_SOURCE', '-Wno-unknown-pragmas']);

t.test('attention tile coverage, swizzle, mma fragment maps and the emulated kernels', { skip: built.reason ?? false }, async (t) => {
  const result = run(built.binary!);
  t.same(result.failed, [], 'no check failed');
  t.ok(result.passed.length > 150, `${result.passed.length} checks ran`);
  const kinds = ['fragment maps', 'bijection', 'bank-conflict-free', 'warp GEMMs', 'forward/dq tiles', 'backward tiles'];
  kinds.push('decode splits', 'sequence search', 'emulated forward', 'emulated decode', 'emulated backward', 'emulated kvCacheWrite');
  kinds.push('emulated Hopper forward', 'emulated Hopper backward', 'emulated Hopper GEMM');
  kinds.push('emulated SIMT forward', 'emulated SIMT backward');
  for (const D of [16, 24, 32, 64, 128, 200]) t.ok(result.passed.some((l) => l.includes(`SIMT backward: f32, D ${D},`)), `SIMT f32 at D ${D}`);
  for (const kind of kinds) {
    t.ok(result.passed.some((l) => l.includes(kind)), `ran: ${kind}`);
  }
  t.ok(result.passed.some((l) => l.includes('4097')), 'covers the 4097-token document');
  t.equal(result.passed.filter((l) => l.includes('Hopper GEMM') && l.includes('segment K1')).length, 2, "Hopper GEMM with LoRA's second K segment");
  t.equal(result.status, 0, 'exit 0');
});

t.test('the checks catch deliberately broken variants', { skip: built.reason ?? false }, async (t) => {
  const faults: Array<[string, string]> = [
    ['mask', 'masked pair computed unmasked'],
    ['swizzle', 'bank-conflict-free'],
    ['ldmatrix', 'S = Q·Kᵀ'],
    ['split', 'splits do not tile the keys'],
    ['emulator', 'emulated forward'],
    ['hopper', 'emulated Hopper forward'],
    ['hopper', 'emulated Hopper backward'],
    ['hopper', 'emulated Hopper GEMM'],
    ['simt', 'emulated SIMT forward'],
    ['simt', 'emulated SIMT backward'],
  ];
  for (const [fault, symptom] of faults) {
    const result = run(built.binary!, fault);
    t.equal(result.status, 1, `${fault}: exit 1`);
    t.ok(result.failed.some((l) => l.includes(symptom)), `${fault}: reports "${symptom}"`);
  }
});
