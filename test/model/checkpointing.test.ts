/**
 * Activation checkpointing recomputes each block in the backward with the same dropout draws:
 * gradients are bit-identical to the plain backward, and the forward keeps far less memory.
 */
import t from 'tap';
import { memoryStats } from '../../lib/device';
import { LlamaModel, LoraConfig } from '../../lib/model/llama';
import { Rng } from '../../lib/rng';
import { scope, sync } from '../../lib/tensor';
import { hostRng, testSeed } from '../helpers/random';
import { deviceBatch, packedBatch, randomHostWeights, tinyArch, toTensors, weightShapes } from './tiny-model';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

async function run(model: LlamaModel, batch: ReturnType<typeof packedBatch>, drawSeed: number) {
  const grads = new Map<string, Buffer>();
  await sync();
  const before = memoryStats('cpu', { resetPeak: true }).bytesInUse;
  let forwardPeak = 0;
  const loss = await scope(async () => {
    const result = await model.forward(deviceBatch(batch), new Rng(drawSeed));
    await sync();
    forwardPeak = memoryStats('cpu').bytesInUse - before;
    const pending: Array<Promise<void>> = [];
    await model.backward(result, 1 / 7, (name, g) => pending.push(g.toBytes().then((b) => void grads.set(name, Buffer.from(b)))));
    await Promise.all(pending);
    return result.loss.loss.item();
  });
  const stepPeak = memoryStats('cpu').peakBytes - before;
  return { loss, grads, forwardPeak, stepPeak };
}

for (const mode of ['full', 'lora'] as const) {
  t.test(`checkpointed backward equals the plain one bit for bit (${mode}, dropout on)`, async (t) => {
    const arch = tinyArch({ numLayers: 4, hiddenSize: 32, intermediateSize: 64, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 37 });
    const shapes = weightShapes(arch);
    const host = randomHostWeights(arch, rng);
    const batch = packedBatch(rng, arch.vocabSize, [40, 23, 61]);
    const lora: LoraConfig | undefined = mode === 'lora' ? { r: 4, alpha: 8, dropout: 0.2, targets: ['q', 'v', 'up', 'down'], useRslora: false } : undefined;
    const build = (activationCheckpointing: boolean) =>
      new LlamaModel(arch, toTensors(host, shapes, 'f32'), { lora, rng: new Rng(seed % 5000), activationCheckpointing });
    const plain = await run(build(false), batch, seed % 777);
    const checkpointed = await run(build(true), batch, seed % 777);
    t.equal(checkpointed.loss, plain.loss, 'same loss');
    t.same([...checkpointed.grads.keys()].sort(), [...plain.grads.keys()].sort());
    let identical = 0;
    for (const [name, bytes] of plain.grads) if (bytes.equals(checkpointed.grads.get(name)!)) identical++;
    t.equal(identical, plain.grads.size, `all ${plain.grads.size} gradients bit-identical`);
    t.ok(
      checkpointed.forwardPeak < plain.forwardPeak * 0.6,
      `forward keeps ${checkpointed.forwardPeak} bytes instead of ${plain.forwardPeak}`,
    );
    t.ok(checkpointed.stepPeak < plain.stepPeak * 0.8, `step peak ${checkpointed.stepPeak} bytes instead of ${plain.stepPeak}`);
  });
}
