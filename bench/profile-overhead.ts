/**
 * The per-op profiler's own cost: one LoRA training run (runTraining, random weights of a preset's
 * shapes, random packed tokens) whose steps alternate between profiled and not, so both halves
 * share the process, the caches and the machine's load. Step time is host time between the
 * trainer's step reports (every step ends synchronised); the first two steps are dropped. Then the
 * cost per op where it shows most: rounds of 20,000 one-element `scale` ops, queued and synced,
 * alternating plain and profiled.
 *
 *   node dist/bench/profile-overhead.js [--device cpu|cuda:0] [--preset small] [--layers N]
 *     [--seq 128] [--micro-batch 2] [--pairs 8]
 *
 * Writes $OUT/profile-overhead.json on the device machine, else bench/results/<date>-profile-overhead.json
 * (profiled_over_plain_ratio = median profiled step / median plain step).
 */
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { llamaArch } from '../lib/model/config';
import { LlamaModel } from '../lib/model/llama';
import { activeProfiler, startProfiler, stopProfiler } from '../lib/profiler/session';
import { HostRng, Rng } from '../lib/rng';
import { scale } from '../lib/ops';
import { scope, sync, zeros } from '../lib/tensor';
import { runTraining } from '../lib/train/trainer';
import { describeDevice, median, round, table, writeResult } from './common/report';
import { ALL_TARGETS, batchStream, benchConfig, benchLoopConfig, packedBatch, randomWeights } from './common/train-shapes';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      device: { type: 'string', default: 'cpu' },
      preset: { type: 'string', default: 'small' },
      layers: { type: 'string' },
      seq: { type: 'string', default: '128' },
      'micro-batch': { type: 'string', default: '2' },
      pairs: { type: 'string', default: '8' },
    },
  });
  const device = describeDevice(values.device);
  const config = benchConfig(values.preset, values.layers === undefined ? undefined : Number(values.layers));
  const arch = llamaArch(config);
  const [seq, microBatch, pairs] = [Number(values.seq), Number(values['micro-batch']), Number(values.pairs)];
  const rng = new Rng(1);
  const dtype = device.device === 'cpu' ? 'f32' : 'bf16';
  const model = new LlamaModel(arch, randomWeights(config, device.device, dtype, rng), {
    device: device.device,
    lora: { r: 16, alpha: 32, dropout: 0, targets: ALL_TARGETS, useRslora: false },
    rng,
  });
  const hostRng = new HostRng(1);
  const tokens = seq * microBatch;
  const stream = batchStream(() => packedBatch(Int32Array.from({ length: tokens }, () => hostRng.int(arch.vocabSize)), microBatch, seq));
  const warm = 2;
  const plain: number[] = [];
  const profiled: number[] = [];
  let ops = 0;
  let last = performance.now();
  await runTraining({
    model,
    config: benchLoopConfig(warm + 2 * pairs),
    train: stream,
    out: os.tmpdir(),
    rng: new Rng(1, 1 << 20),
    configHash: 'bench',
    checkpoints: false,
    onStep: (m) => {
      const now = performance.now();
      const wasProfiled = activeProfiler() !== undefined;
      if (m.step > warm) (wasProfiled ? profiled : plain).push(now - last);
      if (wasProfiled) ops = Math.max(ops, stopProfiler()!.steps[0].records.length);
      // steps warm+1, warm+3, ... run plain; warm+2, warm+4, ... profiled
      else if (m.step > warm && (m.step - warm) % 2 === 1) startProfiler(device.device);
      last = performance.now();
    },
  });
  // per op, on ops that do nothing: what the profiler adds to each queued op
  const x = zeros([1], { device: device.device });
  const perOp: { plain: number[]; profiled: number[] } = { plain: [], profiled: [] };
  const n = 20_000;
  for (let round = 0; round < 10; round++) {
    const on = round % 2 === 1;
    if (on) startProfiler(device.device);
    const t0 = performance.now();
    await scope(async () => {
      for (let i = 0; i < n; i++) scale(x, 1).dispose();
      await sync(device.device);
    });
    (on ? perOp.profiled : perOp.plain).push(((performance.now() - t0) * 1000) / n);
    if (on) stopProfiler();
  }
  const p = median(profiled);
  const q = median(plain);
  const overheadPerOpUs = ((p - q) * 1000) / ops;
  console.log(`profiler overhead on ${device.device} (${device.name}): ${values.preset} LoRA, ${microBatch} x ${seq} tokens, ${pairs} pairs of steps`);
  table(
    ['steps', 'median ms', 'min ms', 'max ms'],
    [
      ['profiled', round(p), round(Math.min(...profiled)), round(Math.max(...profiled))],
      ['plain', round(q), round(Math.min(...plain)), round(Math.max(...plain))],
    ],
  );
  console.log(`ratio ${round(p / q, 4)}, ${ops} ops per step, ${round(overheadPerOpUs)} us per op`);
  const [opOn, opOff] = [median(perOp.profiled), median(perOp.plain)];
  console.log(`one-element scale ops: ${round(opOff)} us each plain, ${round(opOn)} us profiled: ${round(opOn - opOff)} us added per op`);
  writeResult('profile-overhead', device, {
    preset: values.preset,
    layers: config.numLayers,
    tokens_per_step: tokens,
    ops_per_step: ops,
    profiled_step_ms: profiled,
    plain_step_ms: plain,
    median_profiled_step_ms: p,
    median_plain_step_ms: q,
    profiled_over_plain_ratio: p / q,
    overhead_us_per_op: overheadPerOpUs,
    tiny_op_us: perOp,
    tiny_op_added_us: opOn - opOff,
    timing: `${warm} warm-up steps dropped, then steps alternate plain/profiled; host time between step reports (each step ends synchronised)`,
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
