/**
 * GPU kernel benchmark: `node dist/bench/kernels.js` (after `npm run build`) on a machine with a
 * CUDA GPU. Measures seqtune's matmul (bf16, tensor cores) on every GEMM of a Llama-3-8B layer and
 * its LM head (hidden 4096, kv 1024, MLP 14336, vocab 128256) at 2048, 8192 and 16384 tokens:
 * the forward x·Wᵀ and both backward products (dx = dy·W, dW = dyᵀ·x); loraLinear forward and
 * backward (r = 16) on the q projection; linearCrossEntropy forward and backward over the full
 * vocabulary, with the LM-head loss's peak memory on both sides. Each loraLinear row is also timed
 * without its rank-r path (the base product alone, as matmul: x·Wᵀ forward, dy·W backward) for the
 * rank-r share of its time. PyTorch (cuBLAS) runs the same cases in the same run through a child process
 * (bench/peer/torch_kernels.py, `pip install torch`; a benchmark-only peer, never a dependency).
 * Prints TFLOP/s and ours/torch throughput ratios, and writes bench/results/<YYYY-MM-DD>-kernels.json
 * with the device, the command, every figure and `<what>_ratio` fields (geometric means; > 1: ours
 * faster). Without a usable GPU it prints why and exits 0. An op whose CUDA kernel is not wired
 * into its op builder yet is reported as "not wired" instead of timed.
 *
 *   node dist/bench/kernels.js [--device cuda:N|cpu] [--preset 8b] [--tokens 2048,8192,16384]
 *
 * --preset takes another model preset's shapes (hidden, kv = kv heads × head dim, MLP, vocab) and
 * --tokens other token counts: `--device cpu --preset tiny --tokens 64` checks the script and the
 * peer's plumbing on a machine without a GPU in seconds (CPU figures, never GPU ones). Writes
 * $OUT/kernels.json on the device machine.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { devices, memoryStats } from '../lib/device';
import { isSeqtuneError } from '../lib/errors';
import { packageRoot } from '../lib/native';
import { isPresetName, presetConfig } from '../lib/model/presets';
import { linearCrossEntropy, linearCrossEntropyBackward, loraLinear, loraLinearBackward, matmul, opSupport } from '../lib/ops';
import { HostRng, Rng } from '../lib/rng';
import { randn, sync, tensor, type Tensor } from '../lib/tensor';
import { hopperKernelsNow, roundTo, table } from './common/report';

const RANK = 16;

interface MatmulCase {
  kind: 'matmul';
  name: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}
interface LoraCase {
  kind: 'lora_fwd' | 'lora_bwd';
  name: string;
  T: number;
  in: number;
  out: number;
  r: number;
  scale: number;
}
interface LceCase {
  kind: 'lce_fwd' | 'lce_bwd';
  name: string;
  T: number;
  C: number;
  V: number;
}
type Case = MatmulCase | LoraCase | LceCase;

const isLora = (c: Case): c is LoraCase => c.kind === 'lora_fwd' || c.kind === 'lora_bwd';
const isLce = (c: Case): c is LceCase => c.kind === 'lce_fwd' || c.kind === 'lce_bwd';

/** The LM-head loss's memory row fields: ours measured, torch's logits as its peer holds them. */
function lceMemory(c: LceCase, peak: number | null) {
  const torch = 6 * c.T * c.V;
  return { peak_bytes: peak, torch_logits_bytes: torch, memory_fraction: peak === null ? null : roundTo(peak / torch, 4) };
}

/** The GEMM shapes of a preset's layer and LM head: Llama-3-8B's (4096, 1024, 14336, 128256) for 8b. */
function presetShapes(preset: string) {
  if (!isPresetName(preset)) throw new Error(`unknown --preset ${preset}`);
  const c = presetConfig(preset, { bosTokenId: null, eosTokenId: 0 });
  return { HIDDEN: c.hiddenSize, KV: c.numKvHeads * c.headDim, MLP: c.intermediateSize, VOCAB: c.vocabSize };
}

function cases(preset: string, TOKENS: number[]): Case[] {
  const { HIDDEN, KV, MLP, VOCAB } = presetShapes(preset);
  const out: Case[] = [];
  const layers: Array<[string, number, number]> = [
    ['q/o', HIDDEN, HIDDEN],
    ['k/v', HIDDEN, KV],
    ['gate/up', HIDDEN, MLP],
    ['down', MLP, HIDDEN],
    ['lm_head', HIDDEN, VOCAB],
  ];
  for (const T of TOKENS) {
    for (const [label, inF, outF] of layers) {
      out.push({ kind: 'matmul', name: `${label} fwd T=${T}`, M: T, N: outF, K: inF, transA: false, transB: true });
      out.push({ kind: 'matmul', name: `${label} dx T=${T}`, M: T, N: inF, K: outF, transA: false, transB: false });
      out.push({ kind: 'matmul', name: `${label} dW T=${T}`, M: outF, N: inF, K: T, transA: true, transB: false });
    }
    const lora = { T, in: HIDDEN, out: HIDDEN, r: RANK, scale: 2 };
    out.push({ kind: 'lora_fwd', name: `lora q fwd T=${T}`, ...lora });
    out.push({ kind: 'lora_bwd', name: `lora q bwd T=${T}`, ...lora });
    out.push({ kind: 'lce_fwd', name: `lm_head+CE fwd T=${T}`, T, C: HIDDEN, V: VOCAB });
    out.push({ kind: 'lce_bwd', name: `lm_head+CE bwd T=${T}`, T, C: HIDDEN, V: VOCAB });
  }
  return out;
}

/** FLOPs counted for TFLOP/s (the same for both sides): the useful products only. */
function flops(c: Case): number {
  switch (c.kind) {
    case 'matmul':
      return 2 * c.M * c.N * c.K;
    case 'lora_fwd':
      return 2 * c.T * c.in * c.out + 2 * c.T * c.r * (c.in + c.out);
    case 'lora_bwd':
      return 2 * c.T * c.in * c.out + 4 * c.T * c.r * (c.in + c.out);
    case 'lce_fwd':
    case 'lce_bwd':
      return (c.kind === 'lce_fwd' ? 2 : 4) * c.T * c.C * c.V;
  }
}

/** One result row of the report. */
interface Row {
  name: string;
  kind: Case['kind'];
  shape: string;
  flops: number;
  ms: number | null;
  tflops: number | null;
  torch_ms: number | null;
  torch_tflops: number | null;
  ratio: number | null;
  /** LM-head loss only: bytes the call held at its peak beyond its inputs and outputs (measured), torch's
   *  logits (bf16 plus their f32 copy, 6·T·V bytes, as the peer's F.linear(h, w).float() holds them)
   *  and ours / torch's (target ≤ 1/8). */
  peak_bytes?: number | null;
  torch_logits_bytes?: number;
  memory_fraction?: number | null;
  note: string | null;
}

function shapeOf(c: Case): string {
  if (c.kind === 'matmul') return `${c.M}x${c.N}x${c.K}${c.transA ? ' Aᵀ' : ''}${c.transB ? ' Bᵀ' : ''}`;
  if (isLora(c)) return `T${c.T} ${c.in}->${c.out} r${c.r}`;
  return `T${c.T} C${c.C} V${c.V}`;
}

function opOf(c: Case): string {
  return { matmul: 'matmul', lora_fwd: 'loraLinear', lora_bwd: 'loraLinearBackward', lce_fwd: 'linearCrossEntropy', lce_bwd: 'linearCrossEntropyBackward' }[c.kind];
}

// ---- timing ours --------------------------------------------------------------------------------

/**
 * Median ms per call of fn over 7 batches, after 3 warm-up calls; each batch queues enough calls
 * for ~25 ms and ends with a device sync, so host launch overhead overlaps the GPU work.
 */
async function medianMs(device: string, fn: () => Tensor[]): Promise<number> {
  const run = () => fn().forEach((t) => t.dispose());
  for (let i = 0; i < 3; i++) run();
  await sync(device);
  let t0 = performance.now();
  run();
  await sync(device);
  const batch = Math.max(1, Math.min(50, Math.floor(25 / Math.max(performance.now() - t0, 1e-3))));
  const times: number[] = [];
  for (let b = 0; b < 7; b++) {
    t0 = performance.now();
    for (let i = 0; i < batch; i++) run();
    await sync(device);
    times.push((performance.now() - t0) / batch);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}

/** Bytes fn's call held at its peak beyond its inputs and its outputs (dh and dW exist on both sides). */
async function peakBytes(device: string, fn: () => Tensor[]): Promise<number> {
  memoryStats(device, { resetPeak: true });
  const out = fn();
  await sync(device);
  const { peakBytes: peak, bytesInUse } = memoryStats(device);
  out.forEach((t) => t.dispose());
  return peak - bytesInUse;
}

async function oursMs(c: Case, device: string, rng: Rng): Promise<{ ms: number; peakBytes?: number }> {
  const live: Tensor[] = [];
  const rand = (shape: number[], std = 1) => {
    const t = randn(shape, { rng, std, dtype: 'bf16', device });
    live.push(t);
    return t;
  };
  try {
    if (c.kind === 'matmul') {
      const a = rand(c.transA ? [c.K, c.M] : [c.M, c.K]);
      const b = rand(c.transB ? [c.N, c.K] : [c.K, c.N]);
      return { ms: await medianMs(device, () => [matmul(a, b, { transA: c.transA, transB: c.transB })]) };
    }
    if (isLora(c)) {
      const x = rand([c.T, c.in]);
      const w = rand([c.out, c.in], 1 / Math.sqrt(c.in));
      const a = rand([c.r, c.in], 1 / Math.sqrt(c.in));
      const b = rand([c.out, c.r], 0.5);
      const options = { scale: c.scale };
      if (c.kind === 'lora_fwd') return { ms: await medianMs(device, () => Object.values(loraLinear(x, w, a, b, options))) };
      const { out, xa } = loraLinear(x, w, a, b, options);
      live.push(out, xa);
      const dy = rand([c.T, c.out]);
      return { ms: await medianMs(device, () => Object.values(loraLinearBackward(dy, x, w, a, b, xa, { ...options, needInput: true })).filter((t): t is Tensor => !!t)) };
    }
    const h = rand([c.T, c.C]);
    const w = rand([c.V, c.C], 1 / Math.sqrt(c.C));
    const pick = new HostRng(c.T);
    const ids = new Int32Array(c.T).map((_, i) => (i % 8 === 0 ? -100 : pick.int(c.V)));
    const labels = tensor(ids, [c.T], { dtype: 'i32', device });
    live.push(labels);
    const call =
      c.kind === 'lce_fwd'
        ? () => Object.values(linearCrossEntropy(h, w, labels))
        : (() => {
            const fwd = linearCrossEntropy(h, w, labels);
            live.push(fwd.loss, fwd.lse, fwd.count);
            return () => Object.values(linearCrossEntropyBackward(h, w, labels, fwd)).filter((t): t is Tensor => !!t);
          })();
    const peak = await peakBytes(device, call);
    return { ms: await medianMs(device, call), peakBytes: peak };
  } finally {
    live.forEach((t) => t.dispose());
  }
}

/** The base product of a LoRA case alone (the same call without its rank-r path): x·Wᵀ, or dx = dy·W. */
function loraBase(c: LoraCase): MatmulCase {
  const fwd = c.kind === 'lora_fwd';
  return { kind: 'matmul', name: `${c.name} base`, M: c.T, N: fwd ? c.out : c.in, K: fwd ? c.in : c.out, transA: false, transB: fwd };
}

/** The rank-r share of a LoRA row's time: 1 - base / whole (under 0.05 is issue 16's target). */
interface RankShare {
  name: string;
  ms: number;
  base_ms: number;
  share: number;
}

// ---- the PyTorch peer ---------------------------------------------------------------------------

interface PeerReport {
  torch: string;
  cuda: string;
  device: string;
  cases: Array<{ name: string; ms?: number; error?: string }>;
}

function runPeer(all: Case[], device: string): { report?: PeerReport; reason?: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-kernels-'));
  const spec = path.join(dir, 'spec.json');
  const out = path.join(dir, 'out.json');
  fs.writeFileSync(spec, JSON.stringify({ device, cases: all }));
  const script = path.join(packageRoot, 'bench', 'peer', 'torch_kernels.py');
  // 5 minutes: a device command may run 10, and a hung peer must leave time for ours and the JSON.
  const run = spawnSync('python3', [script, spec, out], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'], timeout: 300_000 });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') return { reason: 'torch peer timed out after 5 minutes' };
  if (run.error) return { reason: `python3 not runnable: ${run.error.message}` };
  if (run.status !== 0) return { reason: `torch peer failed (is torch installed with CUDA?): ${run.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  return { report: JSON.parse(fs.readFileSync(out, 'utf8')) as PeerReport };
}

// ---- report -------------------------------------------------------------------------------------

const mib = (bytes: number | null | undefined) => (bytes == null ? '-' : roundTo(bytes / 2 ** 20, 2));

const geomean = (xs: number[]) => (xs.length ? roundTo(Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length), 3) : null);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      device: { type: 'string' },
      preset: { type: 'string', default: '8b' },
      tokens: { type: 'string', default: '2048,8192,16384' },
    },
  });
  const report = devices();
  const cpu = values.device === 'cpu';
  const gpu = cpu
    ? { index: -1, name: `cpu (${report.cpuThreads} threads)`, computeCapability: null, totalMemory: null }
    : report.gpus.find((g) => g.usable && (!values.device || `cuda:${g.index}` === values.device));
  if (!gpu) {
    const why = report.cuda.unusableReason ?? (report.cuda.compiled ? `no usable GPU${values.device ? ` ${values.device}` : ''} found` : 'the addon was built without CUDA');
    console.log(`No GPU present (${why}): nothing to benchmark (--device cpu --preset tiny --tokens 64 checks the script on the CPU).`);
    return;
  }
  const device = cpu ? 'cpu' : `cuda:${gpu.index}`;
  const all = cases(values.preset, values.tokens.split(',').map(Number));
  const support = opSupport();
  console.log(cpu ? `${gpu.name}: CPU figures, not GPU ones` : `${gpu.name} (${device}), CUDA runtime ${report.cuda.runtimeVersion}, driver ${report.cuda.driverVersion}`);
  console.log('PyTorch peer...');
  const peer = runPeer(all, device);
  if (peer.reason) console.log(`PyTorch peer skipped: ${peer.reason}`);

  const rng = new Rng(1);
  const rows: Row[] = [];
  const shares: RankShare[] = [];
  for (const c of all) {
    const op = opOf(c);
    const other = peer.report?.cases.find((p) => p.name === c.name);
    const torchMs = other?.ms ?? null;
    let ms: number | null = null;
    let peak: number | null = null;
    let note: string | null = null;
    if (!cpu && !support.get(op)?.cuda) {
      note = `not wired: op '${op}' has no CUDA implementation in this build (kernels/ launchers exist; see bench/NOTES.md)`;
    } else {
      try {
        ({ ms, peakBytes: peak = null } = await oursMs(c, device, rng));
      } catch (error) {
        if (!isSeqtuneError(error)) throw error;
        note = error.code === 'ERR_NOT_IMPLEMENTED' ? `not wired: ${error.message}` : `${error.code}: ${error.message}`;
      }
    }
    const tflops = (t: number | null) => (t ? roundTo(flops(c) / (t * 1e-3) / 1e12, 3) : null);
    const row: Row = {
      name: c.name,
      kind: c.kind,
      shape: shapeOf(c),
      flops: flops(c),
      ms: ms && roundTo(ms, 3),
      tflops: tflops(ms),
      torch_ms: torchMs && roundTo(torchMs, 3),
      torch_tflops: tflops(torchMs),
      ratio: ms && torchMs ? roundTo(torchMs / ms, 3) : null,
      ...(isLce(c) ? lceMemory(c, peak) : {}),
      note: note ?? other?.error ?? null,
    };
    rows.push(row);
    if (isLora(c) && ms) {
      const { ms: baseMs } = await oursMs(loraBase(c), device, rng);
      shares.push({ name: c.name, ms: roundTo(ms, 3), base_ms: roundTo(baseMs, 3), share: roundTo(1 - baseMs / ms, 3) });
    }
    const memory = row.torch_logits_bytes ? `, peak ${mib(row.peak_bytes)} MiB vs torch's logits ${mib(row.torch_logits_bytes)} MiB` : '';
    console.log(`${c.name}: ${row.tflops ?? '-'} TFLOP/s, torch ${row.torch_tflops ?? '-'}${memory}${row.note ? ` (${row.note})` : ''}`);
  }

  console.log(`\n${gpu.name}: TFLOP/s (bf16), ratio = ours / torch throughput`);
  table(
    ['case', 'shape', 'seqtune', 'torch', 'ratio'],
    rows.map((r) => [
      r.name,
      r.shape,
      r.tflops ?? (r.note?.startsWith('not wired') ? 'not wired' : '-'),
      r.torch_tflops ?? '-',
      r.ratio ?? '-',
    ]),
  );
  if (shares.length) {
    console.log('\nloraLinear: rank-r share of the time (1 - base product alone / whole call)');
    table(['case', 'ms', 'base ms', 'rank-r share'], shares.map((s) => [s.name, s.ms, s.base_ms, s.share]));
  }
  const ratios = (kinds: string[]) => geomean(rows.filter((r) => kinds.includes(r.kind) && r.ratio).map((r) => r.ratio as number));
  const result = {
    date: new Date().toISOString(),
    command: [path.basename(process.argv0), ...process.argv.slice(1).map((a) => path.relative(process.cwd(), a) || a)].join(' '),
    device: {
      gpu: gpu.name,
      compute_capability: gpu.computeCapability,
      memory_bytes: gpu.totalMemory,
      cuda_runtime: cpu ? null : report.cuda.runtimeVersion,
      driver: cpu ? null : report.cuda.driverVersion,
      architectures: report.cuda.architectures,
      hopper_kernels: hopperKernelsNow(device),
      cpu: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
    },
    peer: peer.report ? { torch: peer.report.torch, cuda: peer.report.cuda, device: peer.report.device } : null,
    peer_skipped: peer.reason ?? null,
    shapes: { preset: values.preset, ...presetShapes(values.preset), lora_rank: RANK },
    cases: rows,
    gemm_ratio: ratios(['matmul']),
    lora_ratio: ratios(['lora_fwd', 'lora_bwd']),
    lora_rank_share: shares,
    linear_ce_ratio: ratios(['lce_fwd', 'lce_bwd']),
    // The largest ours / torch logits memory over the LM-head loss rows (target ≤ 0.125).
    linear_ce_memory_fraction: rows.some((r) => r.memory_fraction != null) ? Math.max(...rows.map((r) => r.memory_fraction ?? 0)) : null,
  };
  const file = process.env.OUT
    ? path.join(process.env.OUT, 'kernels.json')
    : path.join(packageRoot, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-kernels.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\ngemm_ratio ${result.gemm_ratio ?? '-'}, lora_ratio ${result.lora_ratio ?? '-'}, linear_ce_ratio ${result.linear_ce_ratio ?? '-'} (memory ${result.linear_ce_memory_fraction ?? '-'} of torch's logits)`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
