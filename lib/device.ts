/**
 * Device selection and reporting: `auto` picks the first usable GPU, else the CPU with a one-line
 * reason; an explicit `cuda:N` fails (instead of falling back) when that GPU cannot be used.
 */
import { SeqtuneError } from './errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native, NativeBuildInfo, packageRoot } from './native';

export type DeviceSpec = 'auto' | 'cpu' | `cuda:${number}`;

export interface DeviceReport {
  version: string;
  cuda: {
    compiled: boolean;
    architectures: string[];
    runtimeVersion: string | null;
    driverVersion: string | null;
    unusableReason: string | null;
  };
  gpus: Array<
    NativeBuildInfo['gpus'][number] & {
      /** bytes free now (read at each call; it starts the GPU's CUDA context), null when the GPU is not usable */
      freeMemory: number | null;
    }
  >;
  cpuThreads: number;
}

function cudaVersionString(v: number): string | null {
  return v > 0 ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : null;
}

export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** What the addon was compiled with and which devices are usable (`seqtune info`), with each usable GPU's free memory now. */
export function devices(): DeviceReport {
  const report = buildReport();
  return { ...report, gpus: report.gpus.map((g) => ({ ...g, freeMemory: g.usable ? native().gpuFreeMemory(g.index) : null })) };
}

/** devices() without free memory, which would start a CUDA context on every GPU just to pick one. */
function buildReport(): Omit<DeviceReport, 'gpus'> & { gpus: NativeBuildInfo['gpus'] } {
  const info = native().buildInfo();
  return {
    version: packageVersion(),
    cuda: {
      compiled: info.cudaCompiled,
      architectures: info.cudaArchitectures ? info.cudaArchitectures.split(',') : [],
      runtimeVersion: cudaVersionString(info.cudaRuntimeVersion),
      driverVersion: cudaVersionString(info.cudaDriverVersion),
      unusableReason: info.cudaUnusableReason || null,
    },
    gpus: info.gpus,
    cpuThreads: info.cpuThreads,
  };
}

export interface ResolvedDevice {
  device: string;
  /** set when `auto` fell back to the CPU */
  fallbackReason?: string;
}

/** How the weights' dtype is chosen: `auto` is bf16 on a GPU, f32 on the CPU. */
export const WEIGHTS_DTYPES = ['auto', 'f32', 'bf16'] as const;
export type WeightsDtypeSpec = (typeof WEIGHTS_DTYPES)[number];

/**
 * The dtype a command loads a model's base weights in on `device` (a resolved device: cpu or
 * cuda:N), from --weights-dtype (default auto). One rule for train, generate, eval and the demo;
 * LoRA adapter weights stay f32 whatever this returns.
 */
export function weightsDtype(spec: string | undefined, device: string): 'f32' | 'bf16' {
  const choice = spec ?? 'auto';
  if (!(WEIGHTS_DTYPES as readonly string[]).includes(choice)) {
    throw new SeqtuneError(`--weights-dtype must be ${WEIGHTS_DTYPES.join(', ')}, got '${choice}'`, 'ERR_ARGUMENT');
  }
  if (choice !== 'auto') return choice as 'f32' | 'bf16';
  return device === 'cpu' ? 'f32' : 'bf16';
}

/** `report`: what devices() would say (tests pass a fake machine). */
export function resolveDevice(spec: string = 'auto', report: { cuda: DeviceReport['cuda']; gpus: NativeBuildInfo['gpus'] } = buildReport()): ResolvedDevice {
  if (spec === 'cpu') return { device: 'cpu' };
  if (spec === 'auto') {
    const gpu = report.gpus.find((g) => g.usable);
    if (gpu) return { device: `cuda:${gpu.index}` };
    const reason =
      report.cuda.unusableReason ?? report.gpus.map((g) => `cuda:${g.index} ${g.name}: ${g.reason}`).join('; ') ?? 'no GPU found';
    return { device: 'cpu', fallbackReason: reason || 'no GPU found' };
  }
  const match = /^cuda:(\d+)$/.exec(spec);
  if (!match) throw new SeqtuneError(`unknown device '${spec}': expected auto, cpu or cuda:N`, 'ERR_DEVICE');
  const index = Number(match[1]);
  const gpu = report.gpus.find((g) => g.index === index);
  if (!gpu) {
    throw new SeqtuneError(
      `${spec} is not available: ${report.cuda.unusableReason ?? `only ${report.gpus.length} GPU(s) found`}`,
      'ERR_DEVICE',
    );
  }
  if (!gpu.usable) throw new SeqtuneError(`${spec} (${gpu.name}) cannot be used: ${gpu.reason}`, 'ERR_DEVICE');
  return { device: spec };
}

/**
 * What a run on `device` may use: on a GPU its free memory now (what other processes hold is not
 * ours), from `report` when given; on the CPU the host's memory. `note` says it in words.
 */
export function deviceMemory(device: string, report?: Pick<DeviceReport, 'gpus'>): { available: number; note: string } {
  const match = /^cuda:(\d+)$/.exec(device);
  if (!match) {
    const total = os.totalmem();
    return { available: total, note: `${gib(total)} of host memory` };
  }
  const index = Number(match[1]);
  const gpu = report?.gpus.find((g) => g.index === index);
  const total = gpu?.totalMemory ?? buildReport().gpus.find((g) => g.index === index)?.totalMemory ?? 0;
  const free = gpu ? (gpu.freeMemory ?? total) : native().gpuFreeMemory(index);
  return { available: free, note: `${gib(free)} free of ${gib(total)} on ${device}` };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/** Bytes in use and peak on a device (tensors only; `bytesReserved` includes the CUDA cache). */
export function memoryStats(device: string = 'cpu', options: { resetPeak?: boolean } = {}) {
  return native().memoryStats(device, options.resetPeak ?? false);
}
