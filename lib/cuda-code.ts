/**
 * Which of the addon's compiled CUDA code a GPU runs, from the architectures it was built for
 * (CMake's list, e.g. 80-real, 80-virtual, 90a-real) and the GPU's compute capability, following
 * CUDA's compatibility rules: sm_XY code runs on X.Z for Z >= Y; arch-specific sm_XYa code only on
 * X.Y; compute_XY PTX is JIT-compiled on any newer GPU. `seqtune info` says when a GPU's own code
 * is missing, and how to rebuild for it.
 */
interface Arch {
  number: number;
  suffix: string;
  real: boolean;
  virtual: boolean;
}

function parseArch(text: string): Arch | null {
  const m = /^(\d+)([af]?)(?:-(real|virtual))?$/.exec(text.trim());
  if (!m) return null;
  return { number: Number(m[1]), suffix: m[2], real: m[3] !== 'virtual', virtual: m[3] !== 'real' };
}

/** The GPU's own code: sm_90a on Hopper (the wgmma/TMA kernels need it), else sm_XY. */
export function ownArch(capability: number): string {
  return capability === 90 ? '90a-real' : `${capability}-real`;
}

export interface GpuCode {
  /** the GPU's own SASS is in the build */
  own: boolean;
  /** what it runs: `sm_80` (compatible SASS), `compute_80 PTX` (JIT), or null (nothing) */
  runs: string | null;
  /** one plain sentence when the own code is missing, with the rebuild command; null otherwise */
  note: string | null;
}

export function gpuCode(architectures: readonly string[], computeCapability: string): GpuCode {
  const [major, minor] = computeCapability.split('.').map(Number);
  const cc = major * 10 + minor;
  const archs = architectures.map(parseArch).filter((a): a is Arch => a !== null);
  const sameFamily = (a: Arch) => Math.floor(a.number / 10) === major && a.number <= cc;
  const own = archs.some((a) => a.real && a.number === cc && (cc !== 90 || a.suffix === 'a'));
  if (own) return { own, runs: `sm_${cc}${cc === 90 ? 'a' : ''}`, note: null };
  const sass = archs
    .filter((a) => a.real && (a.suffix === 'a' ? a.number === cc : sameFamily(a)))
    .sort((a, b) => b.number - a.number)[0];
  const ptx = archs
    .filter((a) => a.virtual && (a.suffix === 'a' ? a.number === cc : a.suffix === 'f' ? sameFamily(a) : a.number <= cc))
    .sort((a, b) => b.number - a.number)[0];
  // SASS of another generation present but unusable: worth saying, it is the surprise.
  const otherFamily = archs.find((a) => a.real && !a.suffix && a.number < cc && Math.floor(a.number / 10) !== major);
  const runs = sass ? `sm_${sass.number}${sass.suffix}` : ptx ? `compute_${ptx.number}${ptx.suffix} PTX` : null;
  const built = `this build has ${architectures.join(', ')}`;
  const fallback = sass
    ? `it runs the ${runs} code`
    : ptx
      ? `its kernels are JIT-compiled from ${runs} at first use${otherFamily ? ` (sm_${otherFamily.number}${otherFamily.suffix} code does not run on ${computeCapability})` : ''}`
      : 'the CUDA kernels cannot run on it';
  const missing = cc === 90 ? 'no sm_90a code, so the Hopper kernels (wgmma/TMA GEMM and attention) are off' : `no sm_${cc} code`;
  return { own, runs, note: `${missing} (${built}); ${fallback}. Rebuild for this GPU: SEQTUNE_CUDA_ARCHS=${ownArch(cc)} npm rebuild seqtune` };
}
