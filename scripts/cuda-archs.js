// Which CUDA architectures `npm install` builds (scripts/install.js), as a list for CMake:
//   SEQTUNE_CUDA_ARCHS set  -> exactly those ("90a-real", "80-real;90a-real", commas allowed);
//   GPUs visible            -> each one's own code (9.0: 90a-real, which the Hopper kernels need;
//                              8.6: 86-real ...) plus PTX of the newest, which newer GPUs JIT;
//   no GPU visible          -> 'portable': CMakeLists.txt's fat build (80-real, 80-virtual,
//                              90a-real), so the result (or a prebuild) serves any GPU from Ampere on.
// GPUs come from nvidia-smi's compute capability; nvcc --list-gpu-arch says what the compiler knows.
'use strict';
const { spawnSync } = require('node:child_process');

/** seqtune's CUDA kernels need compute capability 8.0 (native/runtime/cuda_device.cu). */
const MIN_CAPABILITY = 80;
const ARCH = /^(\d{2,3}[af]?)(-real|-virtual)?$/;

function run(command, args) {
  const out = spawnSync(command, args, { encoding: 'utf8', timeout: 20_000 });
  return out.status === 0 ? out.stdout : null;
}

/** [{ name, capability: 90 }] from nvidia-smi, or [] when it is missing or sees no GPU. */
function gpusPresent() {
  const out = run('nvidia-smi', ['--query-gpu=name,compute_cap', '--format=csv,noheader']);
  if (!out) return [];
  return out
    .split('\n')
    .map((line) => /^(.*),\s*(\d+)\.(\d+)\s*$/.exec(line.trim()))
    .filter(Boolean)
    .map((m) => ({ name: m[1].trim(), capability: Number(m[2]) * 10 + Number(m[3]) }));
}

/** The virtual architectures nvcc can compile for (e.g. [75, 80, 86, ..., 120]), or null if unknown. */
function nvccArchs() {
  const out = run(process.env.CUDACXX || 'nvcc', ['--list-gpu-arch']);
  const archs = out && [...out.matchAll(/compute_(\d+)\b/g)].map((m) => Number(m[1]));
  return archs && archs.length ? archs : null;
}

/** The GPU's own code: sm_90a for Hopper (its wgmma/TMA kernels need the arch-specific target). */
function ownArch(capability) {
  return capability === 90 ? '90a-real' : `${capability}-real`;
}

/** CMakeLists.txt's default set (80-real, 80-virtual, 90a-real), by name. */
const PORTABLE = 'portable';

/**
 * { archs: 'A;B' or 'portable', reason } for the environment and machine (both injectable for tests).
 * Throws on a malformed SEQTUNE_CUDA_ARCHS.
 */
function chooseCudaArchs(env = process.env, gpus = gpusPresent, compilerArchs = nvccArchs) {
  const requested = (env.SEQTUNE_CUDA_ARCHS || '').trim();
  if (requested) {
    const list = requested.split(/[\s,;]+/).filter(Boolean);
    const bad = list.filter((a) => !ARCH.test(a) && !['all', 'all-major', 'native', PORTABLE].includes(a));
    if (bad.length || (list.includes(PORTABLE) && list.length > 1)) {
      throw new Error(`SEQTUNE_CUDA_ARCHS: '${requested}' is not a list of CUDA architectures (examples: 90a-real, 86-real;86-virtual, portable)`);
    }
    return { archs: list.join(';'), reason: 'from SEQTUNE_CUDA_ARCHS' };
  }
  const found = gpus();
  const usable = found.filter((g) => g.capability >= MIN_CAPABILITY);
  if (!usable.length) {
    const why = found.length ? `no GPU of compute capability 8.0 or newer (found ${found.map((g) => g.name).join(', ')})` : 'no GPU visible to nvidia-smi';
    return { archs: PORTABLE, reason: `${why}: the portable set, for any GPU from Ampere on` };
  }
  const known = compilerArchs();
  const caps = [...new Set(usable.map((g) => g.capability))].sort((a, b) => a - b);
  const buildable = caps.filter((c) => !known || known.includes(c));
  const archs = buildable.map(ownArch);
  // PTX of the newest GPU present (or the newest the compiler knows, for a GPU newer than it).
  const newest = caps[caps.length - 1];
  const ptx = known ? Math.max(...known.filter((c) => c <= newest)) : newest;
  archs.push(`${ptx}-virtual`);
  const names = usable.map((g) => `${g.name} (${Math.floor(g.capability / 10)}.${g.capability % 10})`).join(', ');
  const skipped = caps.filter((c) => !buildable.includes(c));
  return {
    archs: archs.join(';'),
    reason: `for the GPU(s) present: ${names}` + (skipped.length ? `; this nvcc cannot build sm_${skipped.join(', sm_')}, which will JIT compute_${ptx}` : ''),
  };
}

module.exports = { chooseCudaArchs, gpusPresent, nvccArchs, ownArch, PORTABLE };
