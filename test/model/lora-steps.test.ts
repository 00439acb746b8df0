/**
 * LoRA training steps through the real loop: after two optimizer steps every base weight is
 * bit-identical, and every adapter tensor (A and B) has changed.
 */
import t from 'tap';
import { LlamaModel } from '../../lib/model/llama';
import { Rng } from '../../lib/rng';
import { runTraining } from '../../lib/train/trainer';
import { Batch, BatchStream } from '../../lib/train/batches';
import { hostRng, testSeed } from '../helpers/random';
import { packedBatch, randomHostWeights, tinyArch, toTensors, weightShapes } from './tiny-model';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

t.test('two LoRA steps change A and B and nothing else', async (t) => {
  const arch = tinyArch();
  const model = new LlamaModel(arch, toTensors(randomHostWeights(arch, rng), weightShapes(arch), 'f32'), {
    lora: { r: 2, alpha: 4, dropout: 0.1, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], useRslora: false },
    rng: new Rng(seed % 1000),
  });
  const snapshot = async (tensors: Map<string, { toBytes(): Promise<ArrayBuffer> }>) =>
    new Map(await Promise.all([...tensors].map(async ([n, x]) => [n, Buffer.from(await x.toBytes())] as const)));
  const base = await snapshot(new Map([...model.tensors()].filter(([n]) => !n.includes('lora_'))));
  const adapters = await snapshot(model.trainable());
  const batches: Batch[] = [0, 1].map(() => {
    const b = packedBatch(rng, arch.vocabSize, [5, 7]);
    return { ...b, numLabelTokens: b.labels.filter((l) => l >= 0).length, numDocuments: 2 };
  });
  let i = 0;
  const stream: BatchStream = {
    next: () => batches[i++ % 2],
    epoch: 0,
    batchesPerEpoch: () => 2,
    state: () => i,
    restore: (s) => void (i = s as number),
  };
  const result = await runTraining({
    model,
    config: {
      optimizer: { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
      schedule: { kind: 'constant', warmupSteps: 0 },
      epochs: 1,
      maxSteps: 2,
      gradAccum: 1,
      maxGradNorm: 1,
      evalEvery: 100,
      saveEvery: 100,
      keepCheckpoints: 1,
    },
    train: stream,
    out: '/nonexistent',
    rng: new Rng(seed % 999),
    configHash: 'test',
    checkpoints: false,
  });
  t.equal(result.steps, 2);
  const baseAfter = await snapshot(new Map([...model.tensors()].filter(([n]) => !n.includes('lora_'))));
  for (const [name, bytes] of base) t.ok(bytes.equals(baseAfter.get(name)!), `${name} unchanged`);
  const adaptersAfter = await snapshot(model.trainable());
  t.equal(adapters.size, arch.numLayers * 7 * 2);
  for (const [name, bytes] of adapters) t.notOk(bytes.equals(adaptersAfter.get(name)!), `${name} changed`);
});
