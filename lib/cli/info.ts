import { gpuCode } from '../cuda-code';
import { devices, type DeviceReport } from '../device';
import { opSupport } from '../ops';
import { Command } from './command';

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** The text of `seqtune info` (for this machine's report unless given one). */
export function formatDeviceReport(report: DeviceReport = devices()): string {
  const ops = opSupport();
  const cudaOps = [...ops.values()].filter((o) => o.cuda).length;
  const lines = [
    `seqtune ${report.version}`,
    `CUDA compiled in: ${report.cuda.compiled ? `yes (architectures ${report.cuda.architectures.join(', ')}; runtime ${report.cuda.runtimeVersion})` : 'no'}`,
  ];
  if (report.cuda.compiled) lines.push(`CUDA driver: ${report.cuda.driverVersion ?? 'none found'}`);
  if (report.gpus.length === 0) {
    lines.push(`GPUs: none usable — ${report.cuda.unusableReason ?? 'no GPU found'}`);
  } else {
    for (const gpu of report.gpus) {
      lines.push(
        `GPU cuda:${gpu.index}: ${gpu.name}, ${gib(gpu.totalMemory)}${gpu.freeMemory != null ? ` (${gib(gpu.freeMemory)} free)` : ''}, compute capability ${gpu.computeCapability}` +
          (gpu.usable ? '' : ` — not usable: ${gpu.reason}`),
      );
      const code = report.cuda.compiled && gpu.usable ? gpuCode(report.cuda.architectures, gpu.computeCapability) : null;
      if (code?.note) lines.push(`  ${code.note}`);
      const hopper = Object.entries(gpu.hopperKernels ?? {});
      if (hopper.length) lines.push(`  Hopper kernels: ${hopper.map(([k, state]) => `${k} ${state}`).join('; ')}`);
    }
  }
  lines.push(`CPU threads: ${report.cpuThreads}`);
  lines.push(`ops: ${ops.size} on cpu, ${cudaOps} with CUDA kernels`);
  return lines.join('\n');
}

export const infoCommand: Command = {
  name: 'info',
  summary: 'version, CUDA build and GPUs found (or why none is usable), CPU threads',
  usage: 'seqtune info [--json]',
  options: { json: { type: 'boolean' } },
  async run(values) {
    console.log(values.json ? JSON.stringify(devices(), null, 2) : formatDeviceReport());
    return 0;
  },
};
