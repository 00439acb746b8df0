/**
 * GPU attention benchmark: `node dist/bench/attention.js [--device cuda:N|cpu] [--tokens 16384]
 * [--lengths 512,...,16384] [--head-dims 64,128]` (after `npm run build`).
 *
 * TFLOP/s of seqtune's `attention` (forward) and `attentionBackward` on a GPU, bf16, at the
 * FlashAttention-3 paper's shapes: sequence lengths 512 to 16k with batch = 16k / length (one
 * document per sequence, packed), hidden 2048 (32 heads of 64 or 16 heads of 128), causal and not.
 * In the same run, bench/peer/torch_attention.py times torch's scaled_dot_product_attention with
 * its FLASH_ATTENTION and CUDNN_ATTENTION backends on the same shapes; `<what>_ratio` = ours / the
 * faster of the two (higher is better). FLOPs: 4·len²·D·H·batch forward (halved when causal), 2.5×
 * that backward (Dao-AILab's convention). Prints a table and writes
 * bench/results/<YYYY-MM-DD>-attention.json ($OUT/attention.json on the device machine). Without a
 * usable GPU it says so and exits 0; `--device cpu --tokens 256 --lengths 64,128 --head-dims 64`
 * checks the script on the CPU in seconds (CPU figures; the torch peer needs CUDA and says so).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { devices } from '../lib/device';
import { packageRoot } from '../lib/native';
import { attention, attentionBackward } from '../lib/ops';
import { Rng } from '../lib/rng';
import { randn, scope, sync, tensor } from '../lib/tensor';
import { hopperKernelsNow, medianSeconds, roundTo, table } from './common/report';

const HIDDEN = 2048;

interface Shape {
  length: number;
  batch: number;
  heads: number;
  headDim: number;
  causal: boolean;
}

function allShapes(totalTokens: number, lengths: number[], headDims: number[]): Shape[] {
  return headDims.flatMap((headDim) =>
    [false, true].flatMap((causal) =>
      lengths.map((length) => ({ length, batch: Math.max(1, Math.floor(totalTokens / length)), heads: HIDDEN / headDim, headDim, causal })),
    ),
  );
}

function forwardFlops(s: Shape): number {
  return (4 * s.length * s.length * s.headDim * s.heads * s.batch) / (s.causal ? 2 : 1);
}

interface OursResult {
  fwd_ms: number | null;
  bwd_ms: number | null;
  ampere_fwd_ms: number | null; // Hopper only: the forward with SEQTUNE_ATTENTION_HOPPER=0
  ampere_bwd_ms: number | null; // and the backward
  error: string | null;
}

// The same calls on the FlashAttention-2 kernels: the variable is read at every call.
async function withoutHopperKernel<R>(fn: () => Promise<R>): Promise<R> {
  const saved = process.env.SEQTUNE_ATTENTION_HOPPER;
  process.env.SEQTUNE_ATTENTION_HOPPER = '0';
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.SEQTUNE_ATTENTION_HOPPER;
    else process.env.SEQTUNE_ATTENTION_HOPPER = saved;
  }
}

async function oursOn(device: string, s: Shape, rng: Rng, hopper: boolean): Promise<OursResult> {
  try {
    return await scope(async () => {
      const T = s.length * s.batch;
      const opts = { rng, device, dtype: 'bf16' as const };
      const q = randn([T, s.heads, s.headDim], opts);
      const k = randn([T, s.heads, s.headDim], opts);
      const v = randn([T, s.heads, s.headDim], opts);
      const dout = randn([T, s.heads, s.headDim], opts);
      const cu = Int32Array.from({ length: s.batch + 1 }, (_, b) => b * s.length);
      const options = { cuSeqlens: tensor(cu, [s.batch + 1], { device }), causal: s.causal };
      const forward = attention(q, k, v, options);
      await sync(device);
      // About 50 ms of work per sample whatever the shape (at an assumed 300 TFLOP/s, 20 GFLOP/s on a CPU).
      const calls = Math.max(2, Math.round(0.05 / (forwardFlops(s) / (device === 'cpu' ? 20e9 : 300e12))));
      const fwd = await perCallSeconds(device, () => attention(q, k, v, options), calls);
      const backward = () => attentionBackward(dout, q, k, v, forward, options);
      const bwd = await perCallSeconds(device, backward, Math.ceil(calls / 3));
      const ampere = hopper
        ? await withoutHopperKernel(async () => ({
            fwd: await perCallSeconds(device, () => attention(q, k, v, options), calls),
            bwd: await perCallSeconds(device, backward, Math.ceil(calls / 3)),
          }))
        : null;
      return {
        fwd_ms: fwd * 1e3,
        bwd_ms: bwd * 1e3,
        ampere_fwd_ms: ampere ? ampere.fwd * 1e3 : null,
        ampere_bwd_ms: ampere ? ampere.bwd * 1e3 : null,
        error: null,
      };
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { fwd_ms: null, bwd_ms: null, ampere_fwd_ms: null, ampere_bwd_ms: null, error: message };
  }
}

interface PeerRow {
  length: number;
  head_dim: number;
  causal: boolean;
  flash_fwd_ms: number | null;
  flash_bwd_ms: number | null;
  cudnn_fwd_ms: number | null;
  cudnn_bwd_ms: number | null;
  errors: string[];
}

interface PeerReport {
  torch?: string;
  device?: string;
  rows?: PeerRow[];
  error?: string;
}

/** One python process for every shape, so torch is imported once. */
function runPeer(device: string, shapes: Shape[]): PeerReport {
  const script = path.join(packageRoot, 'bench', 'peer', 'torch_attention.py');
  const spec = shapes.map((s) => ({ length: s.length, batch: s.batch, heads: s.heads, head_dim: s.headDim, causal: s.causal }));
  const run = spawnSync('python3', [script, '--device', device.replace(/^cuda:/, '')], {
    input: JSON.stringify(spec),
    encoding: 'utf8',
    timeout: 5 * 60_000, // a device command may run 10 minutes; the JSON must still be written
    maxBuffer: 16 << 20,
  });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') return { error: 'torch peer timed out after 5 minutes' };
  if (run.error) return { error: `python3 not runnable: ${run.error.message}` };
  const last = run.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as PeerReport;
  } catch {
    return { error: `peer failed (exit ${run.status}): ${run.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  }
}

const tflops = (flops: number, ms: number | null) => (ms ? flops / (ms / 1e3) / 1e12 : null);
const best = (...xs: Array<number | null>) => {
  const ok = xs.filter((x): x is number => x !== null);
  return ok.length ? Math.max(...ok) : null;
};

/**
 * Median seconds per call: each sample runs `fn` `calls` times back to back and then waits for the
 * device once, so the wait's fixed cost is spread over the calls; 9 samples after 2 warm-ups.
 */
async function perCallSeconds(device: string, fn: () => void, calls: number): Promise<number> {
  const sample = () =>
    scope(async () => {
      for (let i = 0; i < calls; i++) fn();
      await sync(device);
    });
  return (await medianSeconds(sample, { warmup: 2, minRuns: 9, maxRuns: 9, minMs: 0 })) / calls;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      device: { type: 'string' },
      tokens: { type: 'string', default: '16384' },
      lengths: { type: 'string', default: '512,1024,2048,4096,8192,16384' },
      'head-dims': { type: 'string', default: '64,128' },
    },
  });
  const TOTAL_TOKENS = Number(values.tokens);
  const shapes = allShapes(TOTAL_TOKENS, values.lengths.split(',').map(Number), values['head-dims'].split(',').map(Number));
  const report = devices();
  const requested = values.device ?? positionals[0];
  const gpu =
    requested === 'cpu'
      ? { index: -1, name: `cpu (${report.cpuThreads} threads)`, computeCapability: null }
      : report.gpus.find((g) => g.usable && (!requested || `cuda:${g.index}` === requested));
  if (!gpu) {
    const why = report.cuda.unusableReason ?? (report.gpus.map((g) => `cuda:${g.index}: ${g.reason}`).join('; ') || 'no GPU found');
    console.log(`attention benchmark: no usable GPU${requested ? ` matching ${requested}` : ''} (${why}); nothing measured`);
    return;
  }
  const device = gpu.index < 0 ? 'cpu' : `cuda:${gpu.index}`;
  console.log(`attention benchmark on ${device} (${gpu.name}), bf16, ${TOTAL_TOKENS} tokens per batch`);
  const rng = new Rng(2026);
  const ours: OursResult[] = [];
  // On a Hopper the default forward and (deterministic) backward take the wgmma/TMA kernels once
  // their self-tests passed (a failure prints one stderr line); the FlashAttention-2 kernels are
  // measured too, in the same run.
  const hopper = gpu.computeCapability === '9.0';
  for (const s of shapes) {
    ours.push(await oursOn(device, s, rng, hopper));
    if (ours.at(-1)?.error && ours.length === 1) console.log(`seqtune attention failed: ${ours[0].error}`);
  }
  const peer = runPeer(device, shapes);
  if (peer.error) console.log(`torch peer skipped: ${peer.error}`);

  const rows = shapes.map((s, i) => {
    const o = ours[i];
    const p = peer.rows?.find((r) => r.length === s.length && r.head_dim === s.headDim && r.causal === s.causal);
    const fwd = forwardFlops(s);
    const bwd = 2.5 * fwd;
    const ourFwd = tflops(fwd, o.fwd_ms), ourBwd = tflops(bwd, o.bwd_ms);
    const peerFwd = best(tflops(fwd, p?.flash_fwd_ms ?? null), tflops(fwd, p?.cudnn_fwd_ms ?? null));
    const peerBwd = best(tflops(bwd, p?.flash_bwd_ms ?? null), tflops(bwd, p?.cudnn_bwd_ms ?? null));
    return {
      length: s.length,
      batch: s.batch,
      heads: s.heads,
      head_dim: s.headDim,
      causal: s.causal,
      fwd_tflops: roundTo(ourFwd, 2),
      fwd_ampere_kernel_tflops: roundTo(tflops(fwd, o.ampere_fwd_ms), 2),
      bwd_tflops: roundTo(ourBwd, 2),
      bwd_ampere_kernel_tflops: roundTo(tflops(bwd, o.ampere_bwd_ms), 2),
      ours_error: o.error,
      torch_flash_fwd_tflops: roundTo(tflops(fwd, p?.flash_fwd_ms ?? null), 2),
      torch_flash_bwd_tflops: roundTo(tflops(bwd, p?.flash_bwd_ms ?? null), 2),
      torch_cudnn_fwd_tflops: roundTo(tflops(fwd, p?.cudnn_fwd_ms ?? null), 2),
      torch_cudnn_bwd_tflops: roundTo(tflops(bwd, p?.cudnn_bwd_ms ?? null), 2),
      torch_errors: p?.errors ?? [],
      attention_fwd_ratio: roundTo(ourFwd !== null && peerFwd !== null ? ourFwd / peerFwd : null, 2),
      attention_bwd_ratio: roundTo(ourBwd !== null && peerBwd !== null ? ourBwd / peerBwd : null, 2),
      hopper_kernel_fwd_ratio: roundTo(o.ampere_fwd_ms !== null && o.fwd_ms !== null ? o.ampere_fwd_ms / o.fwd_ms : null, 2),
      hopper_kernel_bwd_ratio: roundTo(o.ampere_bwd_ms !== null && o.bwd_ms !== null ? o.ampere_bwd_ms / o.bwd_ms : null, 2),
    };
  });
  console.log('\nTFLOP/s (ratio: seqtune / the faster torch backend; fa2: our FlashAttention-2 kernels, Hopper only)');
  table(
    ['D', 'mask', 'len', 'batch', 'fwd', 'fa2', 'flash', 'cudnn', 'ratio', 'bwd', 'fa2', 'flash', 'cudnn', 'ratio'],
    rows.map((r) => [
      r.head_dim,
      r.causal ? 'causal' : 'full',
      r.length,
      r.batch,
      r.fwd_tflops,
      r.fwd_ampere_kernel_tflops,
      r.torch_flash_fwd_tflops,
      r.torch_cudnn_fwd_tflops,
      r.attention_fwd_ratio,
      r.bwd_tflops,
      r.bwd_ampere_kernel_tflops,
      r.torch_flash_bwd_tflops,
      r.torch_cudnn_bwd_tflops,
      r.attention_bwd_ratio,
    ]),
  );
  const out = {
    date: new Date().toISOString(),
    command: [path.basename(process.argv0), ...process.argv.slice(1).map((a) => path.relative(process.cwd(), a) || a)].join(' '),
    device: {
      name: gpu.name,
      device,
      compute_capability: gpu.computeCapability,
      cuda_runtime: device === 'cpu' ? null : report.cuda.runtimeVersion,
      driver: device === 'cpu' ? null : report.cuda.driverVersion,
      hopper_kernels: hopperKernelsNow(device),
    },
    dtype: 'bf16',
    total_tokens: TOTAL_TOKENS,
    flops: 'fwd 4·len²·D·H·batch (/2 causal), bwd 2.5× fwd',
    hopper_kernel_ratios: 'FlashAttention-2 kernel time / default time (on a Hopper: the wgmma/TMA kernels), forward and backward',
    peer: peer.error ? null : { torch: peer.torch, device: peer.device },
    peer_skipped: peer.error ?? null,
    rows,
  };
  const file = process.env.OUT
    ? path.join(process.env.OUT, 'attention.json')
    : path.join(packageRoot, 'bench', 'results', `${out.date.slice(0, 10)}-attention.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
