#!/usr/bin/env node
// npm install step: use a prebuild from prebuilds/<platform>-<arch>/ (or an existing local build)
// when node-gyp-build finds one, else build from source with cmake-js in Release, for the CUDA
// architectures scripts/cuda-archs.js picks (the GPUs present, SEQTUNE_CUDA_ARCHS, or the portable set).
// SEQTUNE_CUDA=0 builds the CPU-only addon even where nvcc exists. SEQTUNE_CUDA_ARCHS (or
// SEQTUNE_FORCE_BUILD=1) always builds from source. --dry-run prints the build command instead.
'use strict';
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { chooseCudaArchs } = require('./cuda-archs');

const root = path.resolve(__dirname, '..');
const dryRun = process.argv.includes('--dry-run');

function found() {
  try {
    return require('node-gyp-build').resolve(root);
  } catch {
    return null;
  }
}

const existing = process.env.SEQTUNE_FORCE_BUILD || process.env.SEQTUNE_CUDA_ARCHS ? null : found();
if (existing) {
  console.log(`seqtune: using ${path.relative(root, existing)}`);
  process.exit(0);
}

const args = [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--config', 'Release'];
if (process.env.SEQTUNE_CUDA === '0') {
  args.push('--CDSEQTUNE_CUDA=OFF');
} else {
  let choice;
  try {
    choice = chooseCudaArchs();
  } catch (error) {
    console.error(`seqtune: ${error.message}`);
    process.exit(1);
  }
  // Always passed, so an earlier configure's choice never lingers in CMake's cache.
  args.push(`--CDSEQTUNE_CUDA_ARCHITECTURES=${choice.archs}`);
  console.log(`seqtune: CUDA architectures ${choice.archs} (${choice.reason}), if nvcc is found`);
}
if (dryRun) {
  console.log(['cmake-js', ...args.slice(1)].join(' '));
  process.exit(0);
}
console.log('seqtune: no prebuild for this platform; building the native addon from source (cmake-js)');
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    [
      'seqtune: building the native addon failed.',
      '  It needs CMake >= 3.25 and a C++17 compiler (g++ >= 9 or clang >= 10); the CUDA toolkit is optional.',
      '  Debian/Ubuntu: apt-get install cmake g++     then: npm rebuild seqtune',
      '  To skip the CUDA kernels: SEQTUNE_CUDA=0 npm rebuild seqtune',
    ].join('\n'),
  );
  process.exit(result.status || 1);
}
