/**
 * GPU attention benchmark: `node dist/bench/attention.js [--device cuda:N|cpu] [--tokens 16384]
 * [--lengths 512,...,16384] [--head-dims 64,128] [--packed-max 2048,8192]` (after `npm run build`).
 *
 * TFLOP/s of seqtune's `attention` (forward) and `attentionBackward` on a GPU, bf16, 16k tokens per
 * batch, three kinds of rows:
 * - `equal`: the FlashAttention-3 paper's shapes, sequence lengths 512 to 16k with batch = 16k /
 *   length (one document per sequence, packed), hidden 2048 (32 heads of 64 or 16 of 128), causal
 *   and not;
 * - `gqa`: Llama-3's grouped-query heads, 32 query and 8 KV heads (Llama-3.2-1B at D = 64,
 *   Llama-3-8B at D = 128), causal, the same lengths;
 * - `packed`: what training runs, documents of mixed lengths (log-uniform from 64 to --packed-max,
 *   fixed seed) packed through cuSeqlens, 32/8 heads, causal; `eq_*` is ours on equal documents of
 *   their mean length (the same tokens), for comparison.
 * In the same run, bench/peer/torch_attention.py times torch's scaled_dot_product_attention with
 * its FLASH_ATTENTION and CUDNN_ATTENTION backends: GQA through `enable_gqa`, packed documents
 * padded to the longest (what transformers does without a varlen kernel; causal masking keeps the
 * right padding out of every real query). `<what>_ratio` = ours / the faster of the two (higher is
 * better). FLOPs count the useful work for both: Σ over documents 4·len²·D·H forward (halved when
 * causal), 2.5× that backward (Dao-AILab's convention), so the padded peer is charged its waste.
 * `bwd` is the default (deterministic) backward, `bwd_fast` the atomic-dQ mode. Prints a table
 * and writes bench/results/<YYYY-MM-DD>-attention.json ($OUT/attention.json on the device
 * machine). Without a usable GPU it says so and exits 0; `--device cpu --tokens 256 --lengths
 * 64,128 --head-dims 64 --packed-max 128` checks the script on the CPU in seconds (CPU figures; the
 * torch peer needs CUDA and says so).
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
const GQA_HEADS = 32;
const GQA_KV_HEADS = 8;

type Kind = 'equal' | 'gqa' | 'packed';

interface Shape {
  kind: Kind;
  docs: number[]; // document lengths, packed one after another
  heads: number;
  kvHeads: number;
  headDim: number;
  causal: boolean;
}

const equalDocs = (length: number, totalTokens: number) =>
  new Array<number>(Math.max(1, Math.floor(totalTokens / length))).fill(length);

/**
 * Document lengths log-uniform in [64, maxLength] (a fixed 32-bit LCG, so every run packs the same
 * documents), the last one cut so that they sum to totalTokens.
 */
export function mixedLengths(totalTokens: number, maxLength: number, seed = 2026): number[] {
  const lo = Math.min(64, maxLength);
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const docs: number[] = [];
  for (let left = totalTokens; left > 0; ) {
    const len = Math.min(left, Math.round(lo * (maxLength / lo) ** uniform()));
    docs.push(len);
    left -= len;
  }
  return docs;
}

export function allShapes(totalTokens: number, lengths: number[], headDims: number[], packedMax: number[]): Shape[] {
  const equal = headDims.flatMap((headDim) =>
    [false, true].flatMap((causal) =>
      lengths.map((length): Shape => {
        const heads = HIDDEN / headDim;
        return { kind: 'equal', docs: equalDocs(length, totalTokens), heads, kvHeads: heads, headDim, causal };
      }),
    ),
  );
  const grouped = (kind: Kind, docs: number[], headDim: number): Shape => ({
    kind,
    docs,
    heads: GQA_HEADS,
    kvHeads: GQA_KV_HEADS,
    headDim,
    causal: true,
  });
  const gqa = headDims.flatMap((headDim) => lengths.map((length) => grouped('gqa', equalDocs(length, totalTokens), headDim)));
  const packed = headDims.flatMap((headDim) => packedMax.map((max) => grouped('packed', mixedLengths(totalTokens, max), headDim)));
  return [...equal, ...gqa, ...packed];
}

export function forwardFlops(s: Shape): number {
  return s.docs.reduce((sum, len) => sum + 4 * len * len * s.headDim * s.heads, 0) / (s.causal ? 2 : 1);
}

/** The equal-length companion of a packed shape: documents of the mean length, as many tokens. */
export function equalCompanion(s: Shape): Shape {
  const tokens = s.docs.reduce((a, b) => a + b, 0);
  const mean = Math.max(1, Math.round(tokens / s.docs.length));
  return { ...s, kind: 'equal', docs: equalDocs(mean, tokens) };
}

interface OursResult {
  fwd_ms: number | null;
  bwd_ms: number | null;
  bwd_fast_ms: number | null; // deterministic: false (atomic dQ)
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
  const failed = (message: string): OursResult => ({
    fwd_ms: null,
    bwd_ms: null,
    bwd_fast_ms: null,
    ampere_fwd_ms: null,
    ampere_bwd_ms: null,
    error: message,
  });
  try {
    return await scope(async () => {
      const T = s.docs.reduce((a, b) => a + b, 0);
      const opts = { rng, device, dtype: 'bf16' as const };
      const q = randn([T, s.heads, s.headDim], opts);
      const k = randn([T, s.kvHeads, s.headDim], opts);
      const v = randn([T, s.kvHeads, s.headDim], opts);
      const dout = randn([T, s.heads, s.headDim], opts);
      const cu = Int32Array.from({ length: s.docs.length + 1 }, () => 0);
      s.docs.forEach((len, b) => (cu[b + 1] = cu[b] + len));
      const options = { cuSeqlens: tensor(cu, [s.docs.length + 1], { device }), causal: s.causal };
      const forward = attention(q, k, v, options);
      await sync(device);
      // About 50 ms of work per sample whatever the shape (at an assumed 300 TFLOP/s, 20 GFLOP/s on a CPU).
      const calls = Math.max(2, Math.round(0.05 / (forwardFlops(s) / (device === 'cpu' ? 20e9 : 300e12))));
      const fwd = await perCallSeconds(device, () => attention(q, k, v, options), calls);
      const backward = (deterministic = true) => () => attentionBackward(dout, q, k, v, forward, { ...options, deterministic });
      const bwd = await perCallSeconds(device, backward(), Math.ceil(calls / 3));
      const bwdFast = await perCallSeconds(device, backward(false), Math.ceil(calls / 3));
      const ampere = hopper
        ? await withoutHopperKernel(async () => ({
            fwd: await perCallSeconds(device, () => attention(q, k, v, options), calls),
            bwd: await perCallSeconds(device, backward(), Math.ceil(calls / 3)),
          }))
        : null;
      return {
        fwd_ms: fwd * 1e3,
        bwd_ms: bwd * 1e3,
        bwd_fast_ms: bwdFast * 1e3,
        ampere_fwd_ms: ampere ? ampere.fwd * 1e3 : null,
        ampere_bwd_ms: ampere ? ampere.bwd * 1e3 : null,
        error: null,
      };
    });
  } catch (error) {
    return failed(error instanceof Error ? error.message : String(error));
  }
}

interface PeerRow {
  id: number;
  flash_fwd_ms: number | null;
  flash_bwd_ms: number | null;
  cudnn_fwd_ms: number | null;
  cudnn_bwd_ms: number | null;
  errors: string[];
}

/** What the peer runs for a shape: SDPA on [batch, heads, length, D], documents padded to the longest. */
export function peerSpec(s: Shape, id: number) {
  return {
    id,
    length: Math.max(...s.docs),
    batch: s.docs.length,
    heads: s.heads,
    kv_heads: s.kvHeads,
    head_dim: s.headDim,
    causal: s.causal,
  };
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
  const spec = shapes.map(peerSpec);
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
      'packed-max': { type: 'string', default: '2048,8192' },
    },
  });
  const TOTAL_TOKENS = Number(values.tokens);
  const numbers = (list: string) => list.split(',').map(Number);
  const shapes = allShapes(TOTAL_TOKENS, numbers(values.lengths), numbers(values['head-dims']), numbers(values['packed-max']));
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
  const equalOfPacked = new Map<number, OursResult>();
  // On a Hopper the default forward and backward take the wgmma/TMA kernels once their self-tests
  // passed (a failure prints one stderr line); the FlashAttention-2 kernels are measured too, in
  // the same run.
  const hopper = gpu.computeCapability === '9.0';
  for (const [i, s] of shapes.entries()) {
    ours.push(await oursOn(device, s, rng, hopper));
    if (ours.at(-1)?.error && ours.length === 1) console.log(`seqtune attention failed: ${ours[0].error}`);
    if (s.kind === 'packed') equalOfPacked.set(i, await oursOn(device, equalCompanion(s), rng, false));
  }
  const peer = runPeer(device, shapes);
  if (peer.error) console.log(`torch peer skipped: ${peer.error}`);

  const rows = shapes.map((s, i) => {
    const o = ours[i];
    const p = peer.rows?.find((r) => r.id === i);
    const fwd = forwardFlops(s);
    const bwd = 2.5 * fwd;
    const ourFwd = tflops(fwd, o.fwd_ms), ourBwd = tflops(bwd, o.bwd_ms);
    const peerFwd = best(tflops(fwd, p?.flash_fwd_ms ?? null), tflops(fwd, p?.cudnn_fwd_ms ?? null));
    const peerBwd = best(tflops(bwd, p?.flash_bwd_ms ?? null), tflops(bwd, p?.cudnn_bwd_ms ?? null));
    const eq = equalOfPacked.get(i);
    const eqFlops = eq ? forwardFlops(equalCompanion(s)) : 0;
    return {
      kind: s.kind,
      length: Math.max(...s.docs), // the longest document (every one, for equal and gqa rows)
      documents: s.docs.length,
      mean_length: roundTo(s.docs.reduce((a, b) => a + b, 0) / s.docs.length, 1),
      heads: s.heads,
      kv_heads: s.kvHeads,
      head_dim: s.headDim,
      causal: s.causal,
      fwd_tflops: roundTo(ourFwd, 2),
      fwd_ampere_kernel_tflops: roundTo(tflops(fwd, o.ampere_fwd_ms), 2),
      bwd_tflops: roundTo(ourBwd, 2),
      bwd_fast_tflops: roundTo(tflops(bwd, o.bwd_fast_ms), 2),
      bwd_ampere_kernel_tflops: roundTo(tflops(bwd, o.ampere_bwd_ms), 2),
      eq_fwd_tflops: eq ? roundTo(tflops(eqFlops, eq.fwd_ms), 2) : null,
      eq_bwd_tflops: eq ? roundTo(tflops(2.5 * eqFlops, eq.bwd_ms), 2) : null,
      ours_error: o.error ?? eq?.error ?? null,
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
  console.log('\nTFLOP/s (ratio: seqtune / the faster torch backend; fa2: our FlashAttention-2 kernels, Hopper only;');
  console.log('fast: the atomic-dQ backward; eq: ours on equal documents of the packed mean length)');
  table(
    ['kind', 'D', 'mask', 'heads', 'len', 'docs', 'fwd', 'fa2', 'eq', 'flash', 'cudnn', 'ratio', 'bwd', 'fast', 'fa2', 'eq', 'flash', 'cudnn', 'ratio'],
    rows.map((r) => [
      r.kind,
      r.head_dim,
      r.causal ? 'causal' : 'full',
      `${r.heads}/${r.kv_heads}`,
      r.kind === 'packed' ? `≤${r.length}` : r.length,
      r.documents,
      r.fwd_tflops,
      r.fwd_ampere_kernel_tflops,
      r.eq_fwd_tflops,
      r.torch_flash_fwd_tflops,
      r.torch_cudnn_fwd_tflops,
      r.attention_fwd_ratio,
      r.bwd_tflops,
      r.bwd_fast_tflops,
      r.bwd_ampere_kernel_tflops,
      r.eq_bwd_tflops,
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
    flops: 'fwd Σ over documents 4·len²·D·H (/2 causal), bwd 2.5× fwd; the padded peer is credited the same useful FLOPs',
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

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
