/**
 * Loads the native addon: a local build (build/Release), else a prebuild for this platform
 * (prebuilds/<platform>-<arch>), through node-gyp-build. SEQTUNE_ADDON=/path/to/seqtune.node
 * overrides both (used to test a build kept elsewhere). A failure explains what was tried and how
 * to fix it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SeqtuneError } from './errors';
import type { OpRecord } from './profiler/session';

export type NativeDType = 'f32' | 'bf16' | 'f16' | 'i32' | 'f64';

export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: NativeDType;
  readonly device: string;
  readonly disposed: boolean;
  dispose(): void;
  toHost(): Promise<ArrayBuffer>;
  view(shape: number[], elementOffset?: number): NativeTensor;
}

export type AttrValue = number | boolean | string | number[] | undefined;
export type Attrs = Record<string, AttrValue>;

export interface NativeBuildInfo {
  cudaCompiled: boolean;
  cudaArchitectures: string;
  cudaRuntimeVersion: number;
  cudaDriverVersion: number;
  cudaUnusableReason: string;
  cpuThreads: number;
  hardwareThreads: number;
  gpus: Array<{
    index: number;
    name: string;
    totalMemory: number;
    computeCapability: string;
    usable: boolean;
    reason: string;
    /**
     * Compute capability 9.0 only: each self-tested Hopper kernel (gemm, attentionForward,
     * attentionBackward) and its state on this GPU: "untested" (tested at its first eligible
     * call), "on", or "off: <why>".
     */
    hopperKernels: Record<string, string>;
  }>;
}

export interface NativeMemoryStats {
  bytesInUse: number;
  peakBytes: number;
  bytesReserved: number;
}

/** One op's declaration (native/ops/<op>.cpp, REGISTER_OP): lib/ops.ts names outputs from it. */
export interface NativeOpSchema {
  name: string;
  /** has a CUDA implementation in this build */
  cuda: boolean;
  /** input names; "x?" is optional, "xs..." a list */
  inputs: string[];
  attrs: Array<{ name: string; type: 'number' | 'integer' | 'boolean' | 'string' | 'array of numbers'; default?: AttrValue; required: boolean }>;
  /** in order; one with `when` is present only when that boolean attr is true */
  outputs: Array<{ name: string; when?: string }>;
}

export interface NativeBinding {
  setErrorClass(cls: typeof SeqtuneError): void;
  fromHost(device: string, dtype: NativeDType, shape: number[], data: ArrayBufferView | null): NativeTensor;
  runOp(name: string, inputs: Array<NativeTensor | null>, attrs: Attrs): NativeTensor[];
  listOps(): NativeOpSchema[];
  sync(device: string): Promise<void>;
  memoryStats(device: string, resetPeak?: boolean): NativeMemoryStats;
  buildInfo(): NativeBuildInfo;
  /** bytes free on a usable GPU now (cudaMemGetInfo); throws ERR_DEVICE otherwise */
  gpuFreeMemory(index: number): number;
  /** the per-op profiler (lib/profiler/session.ts) */
  profilerEnable(on: boolean): void;
  profilerNow(): number;
  profilerTake(device?: string): OpRecord[];
}


/** The package's root: lib/ runs from source (tests) or from dist/lib (built). */
export const packageRoot = (() => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'CMakeLists.txt'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '..', '..');
  }
})();

let cached: NativeBinding | undefined;

export function native(): NativeBinding {
  if (!cached) {
    cached = load();
    cached.setErrorClass(SeqtuneError);
    if (process.env.SEQTUNE_PROFILE) {
      // Loaded here, not imported above: the profiler itself calls native().
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./profiler/session') as typeof import('./profiler/session')).profileFromEnvironment();
    }
  }
  return cached;
}

function load(): NativeBinding {
  const attempts: string[] = [];
  const override = process.env.SEQTUNE_ADDON;
  if (override) {
    try {
      return require(path.resolve(override)) as NativeBinding;
    } catch (error) {
      attempts.push(`SEQTUNE_ADDON=${override}: ${(error as Error).message}`);
    }
  } else {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const gypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
      return gypBuild(packageRoot);
    } catch (error) {
      attempts.push(`build/Release and prebuilds/${process.platform}-${process.arch}: ${(error as Error).message}`);
    }
  }
  throw new SeqtuneError(
    [
      'Could not load the seqtune native addon.',
      ...attempts.map((a) => `  tried ${a}`),
      'Possible fixes:',
      '  - build it from source: `npm run build:native` (needs CMake >= 3.25 and a C++17 compiler; nvcc for the GPU build)',
      '  - reinstall so the install step can build it: `npm rebuild seqtune` or `rm -rf node_modules && npm install`',
      `  - check that Node ${process.version} is >= 20 and that this platform (${process.platform}-${process.arch}) is the one the addon was built for`,
    ].join('\n'),
    'ERR_NATIVE_LOAD',
  );
}
