/** `seqtune info` compares the addon's CUDA architectures with each GPU (a fake device report). */
import t from 'tap';
import { formatDeviceReport } from '../../lib/cli/info';
import { gpuCode } from '../../lib/cuda-code';
import { devices } from '../../lib/device';

function report(architectures: string[], gpus: Array<[string, string]>) {
  const here = devices();
  return {
    ...here,
    cuda: { ...here.cuda, compiled: true, architectures },
    gpus: gpus.map(([name, computeCapability], index) => ({ index, name, computeCapability, totalMemory: 80 * 2 ** 30, usable: true, reason: '', hopperKernels: {} })),
  };
}

t.test('a Hopper GPU with a build that lacks sm_90a: the Hopper kernels are off, and how to rebuild', async (t) => {
  const lines = formatDeviceReport(report(['80-real', '80-virtual'], [['NVIDIA H100 80GB HBM3', '9.0']])).split('\n');
  const gpu = lines.findIndex((l) => l.startsWith('GPU cuda:0: NVIDIA H100'));
  t.equal(
    lines[gpu + 1],
    '  no sm_90a code, so the Hopper kernels (wgmma/TMA GEMM and attention) are off (this build has 80-real, 80-virtual); ' +
      'its kernels are JIT-compiled from compute_80 PTX at first use (sm_80 code does not run on 9.0). ' +
      'Rebuild for this GPU: SEQTUNE_CUDA_ARCHS=90a-real npm rebuild seqtune',
  );
});

t.test('nothing to say when the GPU\'s own code is there', async (t) => {
  const text = formatDeviceReport(report(['80-real', '80-virtual', '90a-real'], [['NVIDIA H100 80GB HBM3', '9.0'], ['NVIDIA A100-SXM4-80GB', '8.0']]));
  t.notMatch(text, /Rebuild/);
  t.notMatch(formatDeviceReport(report(['86-real'], [['NVIDIA GeForce RTX 3090', '8.6']])), /Rebuild/);
});

t.test('CUDA\'s compatibility rules: family SASS, arch-specific SASS, PTX, nothing', async (t) => {
  t.same(gpuCode(['80-real', '80-virtual', '90a-real'], '8.6'), {
    own: false,
    runs: 'sm_80',
    note: 'no sm_86 code (this build has 80-real, 80-virtual, 90a-real); it runs the sm_80 code. Rebuild for this GPU: SEQTUNE_CUDA_ARCHS=86-real npm rebuild seqtune',
  });
  t.equal(gpuCode(['90a-real'], '9.0').note, null);
  t.equal(gpuCode(['90'], '9.0').runs, 'sm_90', 'plain sm_90 is not the arch-specific code');
  t.equal(gpuCode(['80-real', '80-virtual', '90a-real'], '10.0').runs, 'compute_80 PTX', 'Blackwell JITs the Ampere PTX; sm_90a does not run there');
  t.match(gpuCode(['80-real', '80-virtual', '90a-real'], '12.0').note, /no sm_120 code .*; its kernels are JIT-compiled from compute_80 PTX at first use \(sm_80 code does not run on 12\.0\)\. Rebuild for this GPU: SEQTUNE_CUDA_ARCHS=120-real/);
  t.equal(gpuCode(['90a-real', '90a-virtual'], '10.0').runs, null, 'arch-specific PTX runs on its own GPU only');
  t.match(gpuCode(['90a-real'], '8.0').note, /no sm_80 code \(this build has 90a-real\); the CUDA kernels cannot run on it\. Rebuild for this GPU: SEQTUNE_CUDA_ARCHS=80-real/);
  t.equal(gpuCode(['86-real'], '8.0').runs, null, 'sm_86 code does not run on 8.0');
  t.equal(gpuCode(['86-real'], '8.9').runs, 'sm_86');
});
