/**
 * CPU benchmark: `npm run bench:cpu` (after `npm run build`). Each entry of `benchmarks` measures
 * one part of the CPU backend, prints a table and returns its JSON section; the report goes to
 * bench/results/<YYYY-MM-DD>-cpu.json with the device and the command.
 *
 * matmul: GFLOP/s of seqtune's matmul at the shapes of a LLaMA-style layer (512 tokens, hidden 1024,
 * MLP 2816) in the forward (x·Wᵀ) and backward (dx = dy·W, dW = dyᵀ·x) forms, next to OpenBLAS
 * sgemm on the same shapes and thread count, measured in the same run by a small C peer
 * (bench/peer/openblas_sgemm.c) when OpenBLAS is installed (`apt-get install libopenblas-dev`;
 * a benchmark-only peer, never a dependency). matmul_ratio = ours / OpenBLAS (higher is better).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native, packageRoot } from '../lib/native';
import { benchAttentionCpu } from './attention-cpu';
import { matmul } from '../lib/ops';
import { Rng } from '../lib/rng';
import { randn, sync } from '../lib/tensor';
import { commandLine, medianSeconds, roundTo, table, writeJson } from './common/report';

interface Benchmark {
  /** the key of its section in the JSON report */
  name: string;
  run(): Promise<unknown>;
}

// ---- matmul -------------------------------------------------------------------------------------

interface MatmulShape {
  name: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

const TOKENS = 512;
const HIDDEN = 1024;
const MLP = 2816;
const ROUNDS = 3;

/** Forward x·Wᵀ and backward dx = dy·W, dW = dyᵀ·x for a linear layer in -> out. */
function linearShapes(label: string, inFeatures: number, outFeatures: number): MatmulShape[] {
  return [
    { name: `${label} fwd x·Wᵀ`, M: TOKENS, N: outFeatures, K: inFeatures, transA: false, transB: true },
    { name: `${label} dx = dy·W`, M: TOKENS, N: inFeatures, K: outFeatures, transA: false, transB: false },
    { name: `${label} dW = dyᵀ·x`, M: outFeatures, N: inFeatures, K: TOKENS, transA: true, transB: false },
  ];
}

const matmulShapes: MatmulShape[] = [
  ...linearShapes(`${HIDDEN}->${HIDDEN}`, HIDDEN, HIDDEN),
  ...linearShapes(`${HIDDEN}->${MLP}`, HIDDEN, MLP),
  ...linearShapes(`${MLP}->${HIDDEN}`, MLP, HIDDEN),
];

async function oursGflops(s: MatmulShape, rng: Rng): Promise<number> {
  const a = randn(s.transA ? [s.K, s.M] : [s.M, s.K], { rng });
  const b = randn(s.transB ? [s.N, s.K] : [s.K, s.N], { rng });
  const seconds = await medianSeconds(async () => {
    const c = matmul(a, b, { transA: s.transA, transB: s.transB });
    await sync();
    c.dispose();
  });
  a.dispose();
  b.dispose();
  return (2 * s.M * s.N * s.K) / seconds / 1e9;
}

/** Builds the OpenBLAS peer in a temp dir; the binary's path, or why it could not be built. */
function buildPeer(): { binary?: string; reason?: string } {
  const source = path.join(packageRoot, 'bench', 'peer', 'openblas_sgemm.c');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-bench-'));
  const binary = path.join(dir, 'openblas_sgemm');
  const cc = spawnSync('cc', ['-O2', source, '-o', binary, '-lopenblas'], { encoding: 'utf8' });
  if (cc.status === 0) return { binary };
  fs.rmSync(dir, { recursive: true, force: true });
  if (cc.error) return { reason: `cc not runnable: ${cc.error.message}` };
  return { reason: `cc failed (is libopenblas-dev installed?): ${cc.stderr.trim().split('\n')[0]}` };
}

function peerRun(binary: string, s: MatmulShape, threads: number): { gflops: number; config: string } {
  const args = [s.M, s.N, s.K, Number(s.transA), Number(s.transB), threads].map(String);
  const run = spawnSync(binary, args, { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads) } });
  if (run.status !== 0) throw new Error(`OpenBLAS peer failed on ${s.name}: ${run.stderr}`);
  return JSON.parse(run.stdout) as { gflops: number; config: string };
}

async function benchMatmul(): Promise<unknown> {
  const threads = native().buildInfo().cpuThreads;
  const peer = buildPeer();
  if (peer.reason) console.log(`OpenBLAS peer skipped: ${peer.reason}`);
  const rng = new Rng(1);
  const rows = [];
  let peerConfig: string | null = null;
  try {
    for (const s of matmulShapes) {
      // Ours and the peer alternate per shape, ROUNDS times, keeping each side's best median: load
      // from other processes then slows both alike and rarely shows in the result.
      let gflops = 0;
      let other: { gflops: number; config: string } | null = null;
      for (let r = 0; r < ROUNDS; r++) {
        gflops = Math.max(gflops, await oursGflops(s, rng));
        const run = peer.binary ? peerRun(peer.binary, s, threads) : null;
        if (run && (!other || run.gflops > other.gflops)) other = run;
      }
      peerConfig = other?.config ?? peerConfig;
      const ratio = other ? gflops / other.gflops : null;
      rows.push({ ...s, gflops: roundTo(gflops, 2), peer_gflops: other ? roundTo(other.gflops, 2) : null, matmul_ratio: ratio && roundTo(ratio, 2) });
    }
  } finally {
    if (peer.binary) fs.rmSync(path.dirname(peer.binary), { recursive: true, force: true });
  }
  console.log(`\nmatmul, f32, ${threads} threads (GFLOP/s)`);
  table(
    ['shape', 'M', 'N', 'K', 'seqtune', 'OpenBLAS', 'ratio'],
    rows.map((r) => [r.name, r.M, r.N, r.K, r.gflops, r.peer_gflops ?? '-', r.matmul_ratio ?? '-']),
  );
  return {
    dtype: 'f32',
    threads,
    peer: peer.binary ? `${peerConfig}, cblas_sgemm, ${threads} threads` : null,
    peer_skipped: peer.reason ?? null,
    shapes: rows,
  };
}


// ---- report -------------------------------------------------------------------------------------

/** Attention tokens/s (no peer on the CPU: PyTorch's CPU attention is not installed here). */
async function benchAttention(): Promise<unknown> {
  console.log('\nattention (causal, H=8, Hkv=2, D=64), tokens/s');
  const rows = await benchAttentionCpu();
  table(
    ['tokens', 'documents', 'forward tok/s', 'backward tok/s'],
    rows.map((r) => [r.tokens, r.documents, Math.round(r.forwardTokensPerSec), Math.round(r.backwardTokensPerSec)]),
  );
  return { rows };
}

// Appended to as the CPU backend grows; each result lands under its name in the report.
const benchmarks: Benchmark[] = [
  { name: 'matmul', run: benchMatmul },
  { name: 'attention', run: benchAttention },
];

function cpuModel(): string {
  const info = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  return /^model name\s*:\s*(.+)$/m.exec(info)?.[1].trim() ?? os.cpus()[0]?.model ?? 'unknown';
}

async function main(): Promise<void> {
  const build = native().buildInfo();
  const report: Record<string, unknown> = {
    date: new Date().toISOString(),
    command: [
      ...['SEQTUNE_ADDON', 'SEQTUNE_NUM_THREADS'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`),
      commandLine(),
    ].join(' '),
    device: { cpu: cpuModel(), threads: build.cpuThreads, hardware_threads: build.hardwareThreads, node: process.version },
    // Other processes' load when the run started: absolute GFLOP/s drop with it, ratios much less.
    load_average_1m: roundTo(os.loadavg()[0], 2),
  };
  for (const b of benchmarks) report[b.name] = await b.run();
  writeJson('cpu', report);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
