// Child of run-ahead.test.ts: two LoRA training steps of the small preset's shapes (random
// weights, random packed tokens) on the CPU under the profiler; prints the device's peak bytes and
// the deepest queue any op saw, as one JSON line. SEQTUNE_MAX_QUEUED_OPS is set by the parent.
import * as os from 'node:os';
import { memoryStats } from '../../lib/device';
import { llamaArch } from '../../lib/model/config';
import { LlamaModel } from '../../lib/model/llama';
import { startProfiler, stopProfiler } from '../../lib/profiler/session';
import { HostRng, Rng } from '../../lib/rng';
import { runTraining } from '../../lib/train/trainer';
import { ALL_TARGETS, batchStream, benchConfig, benchLoopConfig, packedBatch, randomWeights } from '../../bench/common/train-shapes';

async function main(): Promise<void> {
  const seed = Number(process.argv[2]);
  const config = benchConfig('small');
  const arch = llamaArch(config);
  const rng = new Rng(seed);
  const lora = { r: 8, alpha: 16, dropout: 0, targets: ALL_TARGETS, useRslora: false };
  const model = new LlamaModel(arch, randomWeights(config, 'cpu', 'f32', rng), { device: 'cpu', lora, rng });
  const host = new HostRng(seed);
  const seq = 384;
  const stream = batchStream(() => packedBatch(Int32Array.from({ length: seq }, () => host.int(arch.vocabSize)), 1, seq));
  memoryStats('cpu', { resetPeak: true });
  const profiler = startProfiler('cpu');
  await runTraining({ model, config: benchLoopConfig(2), train: stream, out: os.tmpdir(), rng: new Rng(seed, 1 << 20), configHash: 'test', checkpoints: false });
  stopProfiler();
  const depth = Math.max(...profiler.steps.flatMap((s) => s.records.map((r) => r.queueDepth)));
  console.log(JSON.stringify({ peak: memoryStats('cpu').peakBytes, depth, ops: profiler.steps[1].records.length }));
}

void main();
