/**
 * CPU training speed on the demo's model shape: seqtune's trainer (the loop `seqtune demo` runs,
 * trainDemoModel) against the same step in plain PyTorch on the CPU (bench/peer/torch_demo_train.py),
 * in the same run, on the very same packed batches of the demo's SIT data: same model shape, same
 * tokens per step, AdamW with the demo's settings, clipping, a cosine schedule, the loss read every
 * step. The peer's attention comes in two forms (a block-diagonal mask or a loop over documents;
 * torch 1.13 has no variable-length attention); the faster one is the peer's figure.
 *
 * Each repetition runs ours, then each peer form, every one in its own process with the same
 * thread count (the demo trains each arm in a single-threaded process); repetitions alternate the
 * sides so that load from other processes falls on both alike. Per process: tokens/s of the
 * median timed step (the first --warmup steps are dropped), and tokens per CPU-second of the
 * process (steadier on a loaded machine); per side: the median over repetitions.
 *
 *   npx tsc -p . && node dist/bench/demo-cpu-train.js [--preset cpu] [--threads 1] [--steps 30]
 *     [--warmup 5] [--reps 5] [--python /usr/bin/python3] [--no-peer]
 *
 * The peer runs without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (so OpenBLAS picks its own kernels)
 * and needs Debian's python3-torch and libopenblas0-pthread. Writes
 * bench/results/<date>-cpu-train.json with cpu_train_ratio = ours / peer (tokens/s).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { buildDemoData } from '../lib/demo/data';
import { demoDataOptions } from '../lib/demo';
import { budgetedDataset, demoModelConfig, demoParams, demoPreset, demoTokenizeOptions, demoTokenizer, initDemoModel, trainDemoModel } from '../lib/demo/model';
import { packageVersion } from '../lib/device';
import { loaderStream } from '../lib/train/batches';
import { peerScript, runChild, runWorker, workerMain } from './common/child';
import { median, table, writeResult } from './common/report';

interface Spec {
  preset: string;
  steps: number;
  warmup: number;
  seed: number;
}

interface SideResult {
  tokens_per_sec: number;
  /** tokens per CPU-second of the whole process (all its threads) over the timed steps */
  tokens_per_cpu_sec: number;
  median_step_s: number;
  step_s: number[];
  step_tokens?: number[];
  final_loss: number;
  attention?: string;
  threads?: number;
  versions?: Record<string, string>;
  params?: number;
}

/** The demo's training dataset for one arm (SIT: its batches are what the demo trains on), cut to `steps` batches' worth. */
function dataset(spec: Spec) {
  const preset = demoPreset(spec.preset);
  const tokenizer = demoTokenizer();
  const data = buildDemoData(demoDataOptions({ seed: spec.seed }));
  return { preset, tokenizer, dataset: budgetedDataset(data.trainRecords('sit'), demoTokenizeOptions(tokenizer), preset.batchTokens * spec.steps) };
}

/** Ours, in a worker process: the demo's own training call, timed per step. */
async function ours(spec: Spec): Promise<SideResult> {
  const { preset, tokenizer, dataset: ds } = dataset(spec);
  const model = initDemoModel(demoModelConfig(preset, tokenizer), spec.seed, 'cpu');
  const stepS: number[] = [];
  const stepTokens: number[] = [];
  let last = performance.now();
  let tokens = 0;
  let cpuAtWarm: NodeJS.CpuUsage | null = null;
  const outcome = await trainDemoModel(model, ds, preset, spec.seed, (m) => {
    const now = performance.now();
    stepS.push((now - last) / 1000);
    stepTokens.push(m.tokens - tokens);
    last = now;
    tokens = m.tokens;
    if (stepS.length === spec.warmup) cpuAtWarm = process.cpuUsage();
  });
  const cpu = process.cpuUsage(cpuAtWarm ?? undefined);
  for (const t of model.tensors().values()) t.dispose();
  const rates = stepS.slice(spec.warmup).map((s, i) => stepTokens[i + spec.warmup] / s);
  const timedTokens = stepTokens.slice(spec.warmup).reduce((a, b) => a + b, 0);
  return {
    tokens_per_sec: median(rates),
    tokens_per_cpu_sec: timedTokens / ((cpu.user + cpu.system) / 1e6),
    median_step_s: median(stepS.slice(spec.warmup)),
    step_s: stepS,
    step_tokens: stepTokens,
    final_loss: outcome.finalLoss,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      worker: { type: 'boolean', default: false },
      preset: { type: 'string', default: 'cpu' },
      threads: { type: 'string', default: '1' },
      steps: { type: 'string', default: '30' },
      warmup: { type: 'string', default: '5' },
      reps: { type: 'string', default: '5' },
      seed: { type: 'string', default: '0' },
      python: { type: 'string', default: '/usr/bin/python3' },
      'no-peer': { type: 'boolean', default: false },
      'child-timeout-s': { type: 'string', default: '300' },
    },
    strict: true,
  });
  if (values.worker) return workerMain(ours);
  const spec: Spec = { preset: values.preset, steps: Number(values.steps), warmup: Number(values.warmup), seed: Number(values.seed) };
  const threads = Number(values.threads);
  const reps = Number(values.reps);
  const timeout = Number(values['child-timeout-s']);
  if (!(spec.steps > spec.warmup + 2)) throw new Error(`--steps must exceed --warmup by 3 or more`);

  // the batches ours trains on, in order, for the peer (the loader is seeded: the worker gets the same)
  const { preset, tokenizer, dataset: ds } = dataset(spec);
  const stream = loaderStream(ds, { tokenBudget: preset.batchTokens, mode: 'pack', seed: spec.seed });
  const batches = Array.from({ length: stream.batchesPerEpoch() }, () => {
    const b = stream.next();
    return { input_ids: [...b.inputIds], labels: [...b.labels], position_ids: [...b.positionIds], cu_seqlens: [...b.cuSeqlens] };
  });
  const batchesFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-cpu-train-')), 'batches.json');
  fs.writeFileSync(batchesFile, JSON.stringify(batches));
  const config = demoModelConfig(preset, tokenizer);
  const optimizer = { lr: preset.lr, beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay: 0.01 };
  const peerSpec = (attention: string) => ({
    model: {
      vocab_size: config.vocabSize,
      hidden_size: config.hiddenSize,
      intermediate_size: config.intermediateSize,
      num_layers: config.numLayers,
      num_heads: config.numHeads,
      rms_norm_eps: config.rmsNormEps,
      rope_theta: config.ropeTheta,
    },
    optimizer,
    max_grad_norm: 1,
    warmup_ratio: 0.05,
    batches_file: batchesFile,
    attention,
    threads,
    seed: spec.seed,
    warmup_steps: spec.warmup,
  });

  // every child (ours and the peer) gets the thread count; the peer's OpenBLAS picks its own kernels
  process.env.SEQTUNE_NUM_THREADS = String(threads);
  process.env.OMP_NUM_THREADS = String(threads);
  delete process.env.OPENBLAS_CORETYPE;
  delete process.env.OPENBLAS_L2_SIZE;
  const runs: Array<{ rep: number; side: string; result?: SideResult; error?: string; load_average: number[] }> = [];
  const forms = values['no-peer'] ? [] : ['mask', 'docs'];
  for (let rep = 0; rep < reps; rep++) {
    // alternate which side goes first, so a load spike is not always on one side
    const order = rep % 2 === 0 ? ['ours', ...forms] : [...forms, 'ours'];
    for (const side of order) {
      const child =
        side === 'ours'
          ? runWorker<SideResult>(path.join(__dirname, 'demo-cpu-train.js'), spec, timeout)
          : runChild<SideResult>(values.python, [peerScript('torch_demo_train.py')], peerSpec(side), timeout);
      runs.push({ rep, side, ...child, load_average: os.loadavg() });
      const r = child.result;
      console.log(`rep ${rep} ${side.padEnd(4)} ${r ? `${r.tokens_per_sec.toFixed(0)} tokens/s (median step ${(1000 * r.median_step_s).toFixed(1)} ms, loss ${r.final_loss.toFixed(3)})` : child.error}  load ${os.loadavg()[0].toFixed(1)}`);
    }
  }
  const ok = (side: string) => runs.filter((r) => r.side === side && r.result).map((r) => r.result!);
  const oursRuns = ok('ours');
  // same batches on both sides: the worker's tokens per step are the batches written for the peer
  const expected = batches.map((b) => b.input_ids.length);
  for (const r of oursRuns) if (JSON.stringify(r.step_tokens) !== JSON.stringify(expected)) throw new Error('ours trained on other batches than the peer');
  const sideMedian = (results: SideResult[]) => (results.length ? median(results.map((r) => r.tokens_per_sec)) : null);
  const oursTps = sideMedian(oursRuns);
  const peerForms = Object.fromEntries(forms.map((f) => [f, sideMedian(ok(f))]));
  const best = forms.filter((f) => peerForms[f] !== null).sort((a, b) => peerForms[b]! - peerForms[a]!)[0];
  const peerTps = best ? peerForms[best] : null;
  const ratio = oursTps !== null && peerTps ? oursTps / peerTps : null;
  // the same per CPU-second (all threads of each process): less at the mercy of other processes' load
  const cpuMedian = (results: SideResult[]) => (results.length ? median(results.map((r) => r.tokens_per_cpu_sec)) : null);
  const oursCpu = cpuMedian(oursRuns);
  const peerCpu = best ? cpuMedian(ok(best)) : null;
  const cpuRatio = oursCpu !== null && peerCpu ? oursCpu / peerCpu : null;
  // per repetition: ours over the faster peer form of the same repetition (neighbours in time)
  const pairedRatios = Array.from({ length: reps }, (_, rep) => {
    const of = (side: string) => runs.find((r) => r.rep === rep && r.side === side)?.result?.tokens_per_sec;
    const peer = Math.max(...forms.map((f) => of(f) ?? 0));
    const mine = of('ours');
    return mine && peer > 0 ? mine / peer : null;
  }).filter((x): x is number => x !== null);
  console.log('');
  table(
    ['side', 'runs', 'tokens/s (median of runs)', 'per run'],
    [
      ['seqtune', oursRuns.length, oursTps === null ? null : oursTps.toFixed(0), oursRuns.map((r) => r.tokens_per_sec.toFixed(0)).join(' ')],
      ...forms.map((f) => [`torch (${f})`, ok(f).length, peerForms[f] === null ? null : peerForms[f]!.toFixed(0), ok(f).map((r) => r.tokens_per_sec.toFixed(0)).join(' ')]),
    ],
  );
  console.log(`\ncpu_train_ratio (seqtune / torch ${best ?? '-'}) = ${ratio === null ? '-' : ratio.toFixed(2)}; per repetition ${pairedRatios.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`per CPU-second: seqtune ${oursCpu?.toFixed(0) ?? '-'}, torch (${best ?? '-'}) ${peerCpu?.toFixed(0) ?? '-'} tokens; ratio ${cpuRatio?.toFixed(2) ?? '-'}`);
  const load = os.loadavg();
  writeResult('cpu-train', { device: 'cpu', name: `${os.cpus()[0]?.model ?? 'cpu'} (${os.availableParallelism()} cores)`, compute_capability: null, cuda_runtime: null, driver: null }, {
    version: packageVersion(),
    shape: { preset: spec.preset, params: demoParams(config), hidden: config.hiddenSize, layers: config.numLayers, heads: config.numHeads, intermediate: config.intermediateSize, vocab: config.vocabSize },
    tokens_per_step: { batch_tokens: preset.batchTokens, median: median(expected), steps: expected.length, warmup_dropped: spec.warmup },
    threads,
    optimizer: { ...optimizer, max_grad_norm: 1, schedule: 'cosine, warmup ratio 0.05' },
    peer_env: 'OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, OMP_NUM_THREADS and torch.set_num_threads = threads',
    machine_load: `load average ${load.map((l) => l.toFixed(2)).join(', ')} at the end on ${os.availableParallelism()} cores; see each run's load_average`,
    ours: { tokens_per_sec: oursTps, tokens_per_cpu_sec: oursCpu },
    peer: { tokens_per_sec: peerTps, tokens_per_cpu_sec: peerCpu, attention: best ?? null, by_attention: peerForms, versions: ok(best ?? '')[0]?.versions ?? null },
    cpu_train_ratio: ratio,
    cpu_train_ratio_per_rep: pairedRatios,
    cpu_train_cpu_time_ratio: cpuRatio,
    runs,
  });
  fs.rmSync(path.dirname(batchesFile), { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
