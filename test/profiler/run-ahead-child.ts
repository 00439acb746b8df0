// Child of run-ahead.test.ts: two LoRA training steps of a small random model on the CPU under the
// profiler; prints the device's peak bytes and the deepest queue any op saw, as one JSON line.
// SEQTUNE_MAX_QUEUED_OPS (read by the addon at its first op) is set by the parent.
import * as os from 'node:os';
import { memoryStats } from '../../lib/device';
import { LlamaModel } from '../../lib/model/llama';
import { llamaArch } from '../../lib/model/config';
import { presetConfig } from '../../lib/model/presets';
import { startProfiler, stopProfiler } from '../../lib/profiler/session';
import { HostRng, Rng } from '../../lib/rng';
import { full, randn, Tensor } from '../../lib/tensor';
import { expectedWeights } from '../../lib/model/io/weights';
import { runTraining } from '../../lib/train/trainer';
import { IGNORE_INDEX } from '../../lib/data/batch';
import type { BatchStream } from '../../lib/train/batches';

async function main(): Promise<void> {
  const seed = Number(process.argv[2]);
  const config = presetConfig('small', { bosTokenId: null, eosTokenId: 0 });
  const arch = llamaArch(config);
  const rng = new Rng(seed);
  const weights = new Map<string, Tensor>();
  for (const [name, shape] of expectedWeights(config)) {
    weights.set(name, name.endsWith('norm.weight') ? full(shape, 1) : randn(shape, { rng, std: 0.02 }));
  }
  const model = new LlamaModel(arch, weights, { device: 'cpu', lora: { r: 8, alpha: 16, dropout: 0, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], useRslora: false }, rng });
  const host = new HostRng(seed);
  const seq = 384;
  const ids = Int32Array.from({ length: seq }, () => host.int(arch.vocabSize));
  const labels = Int32Array.from({ length: seq }, (_, i) => (i + 1 < seq ? ids[i + 1] : IGNORE_INDEX));
  const batch = { inputIds: ids, labels, positionIds: Int32Array.from({ length: seq }, (_, i) => i), cuSeqlens: Int32Array.from([0, seq]), numLabelTokens: seq - 1, numDocuments: 1 };
  const stream = { next: () => batch, state: () => ({}), restore: () => undefined, batchesPerEpoch: () => 1, epoch: 0 } as unknown as BatchStream;
  memoryStats('cpu', { resetPeak: true });
  const profiler = startProfiler('cpu');
  await runTraining({
    model,
    config: {
      optimizer: { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
      schedule: { kind: 'constant', warmupSteps: 0 },
      epochs: 1,
      maxSteps: 2,
      gradAccum: 1,
      maxGradNorm: 1,
      evalEvery: Number.MAX_SAFE_INTEGER,
      saveEvery: Number.MAX_SAFE_INTEGER,
      keepCheckpoints: 1,
    },
    train: stream,
    out: os.tmpdir(),
    rng: new Rng(seed, 1 << 20),
    configHash: 'test',
    checkpoints: false,
  });
  stopProfiler();
  const depth = Math.max(...profiler.steps.flatMap((s) => s.records.map((r) => r.queueDepth)));
  console.log(JSON.stringify({ peak: memoryStats('cpu').peakBytes, depth, ops: profiler.steps[1].records.length }));
}

void main();
