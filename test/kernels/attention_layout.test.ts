import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

// The CUDA attention kernels checked on the host, no GPU needed: their index math
// (kernels/flash_attention_layout.h) and the kernel bodies themselves, run by a CPU emulator of
// CUDA threads, ldmatrix, mma and cp.async against a float64 reference. attention_layout*.cpp is
// compiled with g++ and run; see the .cpp files for what is checked. Each deliberately broken
// variant must be caught, so the checks can fail.
const root = path.resolve(__dirname, '..', '..');
const sources = [
  ...['attention_layout.cpp', 'attention_layout_tiles.cpp', 'attention_layout_kernels.cpp', 'attention_layout_emulator.cpp'].map(
    (f) => path.join(__dirname, f),
  ),
  path.join(root, 'native', 'runtime', 'dtype.cpp'),
];

function build(): { binary?: string; reason?: string } {
  const binary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-attn-layout-')), 'attention_layout');
  // The emulator's fibers switch stacks with _longjmp, which glibc's fortified build refuses; CUDA's
  // `#pragma unroll` means nothing to g++.
  const flags = ['-std=c++17', '-O2', '-U_FORTIFY_SOURCE', '-Wall', '-Wextra', '-Wno-unknown-pragmas', '-Werror'];
  const cc = spawnSync('g++', [...flags, `-I${root}`, ...sources, '-o', binary], { encoding: 'utf8', timeout: 300_000 });
  if (cc.error) return { reason: `g++ not runnable: ${cc.error.message}` };
  if (cc.status !== 0) throw new Error(`g++ failed:\n${cc.stderr}`);
  return { binary };
}

function run(binary: string, fault?: string) {
  const child = spawnSync(binary, fault ? [fault] : [], { encoding: 'utf8', timeout: 300_000 });
  const lines = (child.stdout ?? '').trim().split('\n');
  return {
    status: child.status,
    passed: lines.filter((l) => l.startsWith('ok ')),
    failed: lines.filter((l) => l.startsWith('FAIL ')),
  };
}

const built = build();

t.test('attention tile coverage, swizzle, mma fragment maps and the emulated kernels', { skip: built.reason ?? false }, async (t) => {
  const result = run(built.binary!);
  t.same(result.failed, [], 'no check failed');
  t.ok(result.passed.length > 150, `${result.passed.length} checks ran`);
  const kinds = ['fragment maps', 'bijection', 'bank-conflict-free', 'warp GEMMs', 'forward/dq tiles', 'backward tiles'];
  kinds.push('decode splits', 'sequence search', 'emulated forward', 'emulated decode', 'emulated backward', 'emulated kvCacheWrite');
  for (const kind of kinds) {
    t.ok(result.passed.some((l) => l.includes(kind)), `ran: ${kind}`);
  }
  t.ok(result.passed.some((l) => l.includes('4097')), 'covers the 4097-token document');
  t.equal(result.status, 0, 'exit 0');
});

t.test('the checks catch deliberately broken variants', { skip: built.reason ?? false }, async (t) => {
  const faults: Array<[string, string]> = [
    ['mask', 'masked pair computed unmasked'],
    ['swizzle', 'bank-conflict-free'],
    ['ldmatrix', 'S = Q·Kᵀ'],
    ['split', 'splits do not tile the keys'],
    ['emulator', 'emulated forward'],
  ];
  for (const [fault, symptom] of faults) {
    const result = run(built.binary!, fault);
    t.equal(result.status, 1, `${fault}: exit 1`);
    t.ok(result.failed.some((l) => l.includes(symptom)), `${fault}: reports "${symptom}"`);
  }
});
