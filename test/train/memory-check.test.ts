/**
 * The memory check runs first, on every device: planned from config.json alone against the GPU's
 * free memory (a fake device report here, as `seqtune info`'s tests use), and a run that cannot fit
 * is refused before any weight, checkpoint or data file is read or anything is written, with the
 * numbers and the settings that would fit.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { devices, DeviceReport } from '../../lib/device';
import { llamaArch, readModelConfig } from '../../lib/model/config';
import { planMemory } from '../../lib/train/memory';
import { train } from '../../lib/train/train';
import { hostRng, testSeed } from '../helpers/random';
import { smallConfig } from './fixtures';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);
const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;
const quiet = { log: () => undefined, progress: { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream };

function fakeMachine(totalMemory: number, freeMemory: number): DeviceReport {
  const gpu = { index: 0, name: 'NVIDIA H100 80GB HBM3', totalMemory, freeMemory, computeCapability: '9.0', usable: true, reason: '', hopperKernels: {} };
  return { ...devices(), cuda: { ...devices().cuda, compiled: true, unusableReason: null }, gpus: [gpu] };
}

/** Llama-3.2-1B's config.json and nothing else: loading any weight or tokenizer would fail. */
function configOnlyModel(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-cfg-'));
  fs.copyFileSync(path.join(__dirname, '..', 'fixtures', 'configs', 'llama-3.2-1b.json'), path.join(dir, 'config.json'));
  return dir;
}

t.test('a full fine-tune that exceeds the GPU\'s free memory is refused before anything is loaded', async (t) => {
  const model = configOnlyModel();
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-run-')), 'out');
  const maxLength = 2048 + 256 * rng.int(8);
  const config = smallConfig(model, '/nonexistent/data.jsonl', out, { mode: 'full', device: 'cuda:0', maxLength, batchSize: 8 });
  const plan = planMemory(llamaArch(await readModelConfig(model)), {
    gpu: true, mode: 'full', loraR: 16, loraTargets: config.lora.targets, microBatchTokens: 8 * maxLength, activationCheckpointing: false,
  });
  const fixed = plan.weights + plan.trainableState;
  const total = 80 * GiB;
  t.ok(plan.total < total * 0.9, 'the total would hold the run; what is free now does not');
  const refusal = async (free: number) => {
    const error = await train(config, { ...quiet, deviceReport: fakeMachine(total, free) }).then(() => null, (e: Error & { code?: string }) => e);
    t.equal(error?.code, 'ERR_OUT_OF_MEMORY', error?.message);
    const message = error?.message ?? '';
    t.ok(message.includes(`this run needs about ${gib(plan.total)} on cuda:0 (weights ${gib(plan.weights)}, trainable state ${gib(plan.trainableState)}, activations ${gib(plan.activations)})`), message);
    t.ok(message.includes(`but ${gib(free)} free of 80.00 GiB on cuda:0`), 'names the free and total memory');
    t.match(message, /LoRA instead of full fine-tuning \(without --full\)/);
    return message;
  };
  // weights and optimizer state alone exceed what is free: only LoRA helps
  const tight = await refusal(Math.round(fixed * (0.5 + 0.4 * rng.uniform())));
  t.notMatch(tight, /--activation-checkpointing|micro-batch/);
  // they fit, the activations do not: a smaller micro-batch or checkpointing helps too
  const low = fixed / 0.9;
  const high = plan.total * 0.95;
  t.ok(low < high);
  const roomy = await refusal(Math.round(low + (high - low) * (0.1 + 0.8 * rng.uniform())));
  t.match(roomy, /a smaller micro-batch: at most \d+ tokens \(now \d+; --batch-tokens \d+/);
  t.match(roomy, /--activation-checkpointing/);
  t.notOk(fs.existsSync(out), 'nothing written: --out not even created');
});

t.test('what fits in the free memory goes on to load (and here fails there, having no weights)', async (t) => {
  const model = configOnlyModel();
  const config = smallConfig(model, '/nonexistent/data.jsonl', path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-run-')), 'out'), { mode: 'lora', device: 'cuda:0', maxLength: 512 });
  const error = await train(config, { ...quiet, deviceReport: fakeMachine(80 * GiB, 79 * GiB) }).then(() => null, (e: Error & { code?: string }) => e);
  t.ok(error, 'fails later');
  t.not(error?.code, 'ERR_OUT_OF_MEMORY', `past the memory check: ${error?.message}`);
});

t.test('a micro-batch too large for what is left after the weights: the token budget that fits', async (t) => {
  const model = configOnlyModel();
  const config = smallConfig(model, '/nonexistent/data.jsonl', path.join(os.tmpdir(), 'never'), { mode: 'lora', device: 'cuda:0', maxLength: 4096, batchSize: 64, activationCheckpointing: true });
  const error = await train(config, { ...quiet, deviceReport: fakeMachine(24 * GiB, 20 * GiB) }).then(() => null, (e: Error & { code?: string }) => e);
  t.equal(error?.code, 'ERR_OUT_OF_MEMORY');
  t.match(error?.message ?? '', /a smaller micro-batch: at most (\d+) tokens \(now 262144; --batch-tokens \1, or a smaller --batch-size or --max-length\)/);
  t.notMatch(error?.message ?? '', /--activation-checkpointing|LoRA instead/, 'only what is not already chosen');
});
