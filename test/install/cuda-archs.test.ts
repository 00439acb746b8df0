/**
 * What `npm install` builds (scripts/install.js --dry-run) with a fake nvidia-smi (and nvcc) first
 * on PATH: the GPUs present, SEQTUNE_CUDA_ARCHS, or the portable set when no GPU is visible.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const install = path.resolve(__dirname, '../../scripts/install.js');

/** A folder with fake nvidia-smi (printing `gpus`, or failing as with no driver) and nvcc. */
function fakeTools(gpus: string[] | 'fail', nvccArchs = [75, 80, 86, 87, 89, 90, 100, 120]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-fake-tools-'));
  const smi = gpus === 'fail' ? 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver." >&2; exit 9' : `printf '%s\\n' ${gpus.map((g) => `'${g}'`).join(' ')}`;
  fs.writeFileSync(path.join(dir, 'nvidia-smi'), `#!/bin/sh\n[ "$1" = "--query-gpu=name,compute_cap" ] || exit 2\n${smi}\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'nvcc'), `#!/bin/sh\n[ "$1" = "--list-gpu-arch" ] && printf '%s\\n' ${nvccArchs.map((a) => `compute_${a}`).join(' ')}\n`, { mode: 0o755 });
  return dir;
}

function dryRun(tools: string, env: Record<string, string> = {}) {
  const out = spawnSync(process.execPath, [install, '--dry-run'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${tools}:${process.env.PATH}`, CUDACXX: '', SEQTUNE_CUDA_ARCHS: '', SEQTUNE_CUDA: '', SEQTUNE_FORCE_BUILD: '1', ...env },
  });
  const archs = /--CDSEQTUNE_CUDA_ARCHITECTURES=(\S+)/.exec(out.stdout)?.[1];
  return { status: out.status, stdout: out.stdout, stderr: out.stderr, archs };
}

t.test('the GPUs present decide: their own code plus PTX of the newest', async (t) => {
  const h100 = dryRun(fakeTools(['NVIDIA H100 80GB HBM3, 9.0']));
  t.equal(h100.status, 0, h100.stderr);
  t.equal(h100.archs, '90a-real;90-virtual', 'Hopper: sm_90a (its wgmma/TMA kernels) and compute_90 PTX');
  t.match(h100.stdout, /for the GPU\(s\) present: NVIDIA H100 80GB HBM3 \(9\.0\)/);
  t.equal(dryRun(fakeTools(['NVIDIA A100-SXM4-80GB, 8.0'])).archs, '80-real;80-virtual');
  t.equal(dryRun(fakeTools(['NVIDIA GeForce RTX 3090, 8.6', 'NVIDIA A100-SXM4-80GB, 8.0', 'NVIDIA A100-SXM4-80GB, 8.0'])).archs, '80-real;86-real;86-virtual', 'one entry per distinct GPU');
  t.equal(dryRun(fakeTools(['NVIDIA H200, 9.0', 'NVIDIA L40S, 8.9'])).archs, '89-real;90a-real;90-virtual');
  const future = dryRun(fakeTools(['Some Future GPU, 13.0']));
  t.equal(future.archs, '120-virtual', 'a GPU newer than nvcc knows: the newest PTX nvcc has');
  t.match(future.stdout, /this nvcc cannot build sm_130, which will JIT compute_120/);
});

t.test('no GPU visible, or none the kernels support: the portable set', async (t) => {
  for (const gpus of ['fail', [], ['Tesla T4, 7.5']] as const) {
    const run = dryRun(fakeTools(gpus as string[] | 'fail'));
    t.equal(run.status, 0, run.stderr);
    t.equal(run.archs, 'portable', JSON.stringify(gpus));
  }
  t.match(dryRun(fakeTools(['Tesla T4, 7.5'])).stdout, /no GPU of compute capability 8\.0 or newer \(found Tesla T4\)/);
  const noSmi = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-no-tools-'));
  t.equal(spawnSync(process.execPath, [install, '--dry-run'], { encoding: 'utf8', env: { PATH: noSmi, SEQTUNE_FORCE_BUILD: '1' } }).stdout.match(/ARCHITECTURES=(\S+)/)?.[1], 'portable', 'no nvidia-smi at all');
});

t.test('SEQTUNE_CUDA_ARCHS overrides and forces a source build; SEQTUNE_CUDA=0 builds no CUDA', async (t) => {
  const tools = fakeTools(['NVIDIA H100 80GB HBM3, 9.0']);
  t.equal(dryRun(tools, { SEQTUNE_CUDA_ARCHS: '80-real,90a-real', SEQTUNE_FORCE_BUILD: '' }).archs, '80-real;90a-real', 'even with a build already there');
  t.equal(dryRun(tools, { SEQTUNE_CUDA_ARCHS: 'portable' }).archs, 'portable');
  const bad = dryRun(tools, { SEQTUNE_CUDA_ARCHS: 'sm_90' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /^seqtune: SEQTUNE_CUDA_ARCHS: 'sm_90' is not a list of CUDA architectures \(examples: 90a-real/);
  const cpu = dryRun(tools, { SEQTUNE_CUDA: '0' });
  t.match(cpu.stdout, /--CDSEQTUNE_CUDA=OFF/);
  t.equal(cpu.archs, undefined);
});
