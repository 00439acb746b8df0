/**
 * Where the demo's CPU training step goes: each op of one step of the demo preset's model, timed
 * alone at the step's shapes (a real packed batch of the demo's SIT data: its documents and
 * positions), times how often the step calls it. A profile by op, for choosing what to speed up.
 *
 *   npx tsc -p . && SEQTUNE_NUM_THREADS=1 node dist/bench/demo-step-ops.js [--preset cpu] [--reps 10] [--only OP]
 *
 * Figures are CPU seconds of this process (process.cpuUsage: the op thread's work, with the JS
 * thread idle while it waits), not wall time, so other processes' load distorts them less. It
 * prints a table and writes nothing: a development tool (SEQTUNE_ADDON=... compares two builds).
 */
import { parseArgs } from 'node:util';
import { buildDemoData } from '../lib/demo/data';
import { demoDataOptions } from '../lib/demo';
import { budgetedDataset, demoModelConfig, demoPreset, demoTokenizeOptions, demoTokenizer } from '../lib/demo/model';
import {
  adamw,
  attention,
  attentionBackward,
  embedding,
  embeddingBackward,
  gradNorm,
  linearCrossEntropy,
  linearCrossEntropyBackward,
  matmul,
  matmulBackward,
  rmsnormResidual,
  rmsnormResidualBackward,
  rope,
  ropeBackward,
  swiglu,
  swigluBackward,
} from '../lib/ops';
import { Rng } from '../lib/rng';
import { randn, scope, sync, tensor, Tensor, zeros } from '../lib/tensor';
import { loaderStream } from '../lib/train/batches';

/** CPU seconds per call: batches of 10 calls queued back to back (as a step queues its ops), then one sync. */
async function cpuSeconds(fn: () => void, reps: number): Promise<number> {
  const batch = async () => {
    await scope(async () => {
      for (let i = 0; i < 10; i++) fn();
      await sync('cpu');
    });
  };
  for (let i = 0; i < 2; i++) await batch();
  const start = process.cpuUsage();
  for (let i = 0; i < reps; i++) await batch();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6 / reps / 10;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { preset: { type: 'string', default: 'cpu' }, reps: { type: 'string', default: '10' }, only: { type: 'string' } }, strict: true });
  const reps = Number(values.reps);
  const preset = demoPreset(values.preset);
  const tokenizer = demoTokenizer();
  const config = demoModelConfig(preset, tokenizer);
  const data = buildDemoData(demoDataOptions({}));
  const ds = budgetedDataset(data.trainRecords('sit'), demoTokenizeOptions(tokenizer), preset.batchTokens * 4);
  const batch = loaderStream(ds, { tokenBudget: preset.batchTokens, mode: 'pack', seed: 0 }).next();
  const T = batch.inputIds.length;
  const [C, I, H, V, L] = [config.hiddenSize, config.intermediateSize, config.numHeads, config.vocabSize, config.numLayers];
  const D = C / H;
  const rng = new Rng(7);
  const r = (shape: readonly number[]) => randn([...shape], { rng, std: 0.5 });
  const ids = tensor(batch.inputIds, [T], { dtype: 'i32' });
  const labels = tensor(batch.labels, [T], { dtype: 'i32' });
  const positions = tensor(batch.positionIds, [T], { dtype: 'i32' });
  const cu = tensor(batch.cuSeqlens, [batch.cuSeqlens.length], { dtype: 'i32' });
  const x = r([T, C]);
  const wqkv = r([C, C]);
  const wup = r([I, C]);
  const wdown = r([C, I]);
  const hMid = r([T, I]);
  const dyC = r([T, C]);
  const dyI = r([T, I]);
  const norm = r([C]);
  const q = r([T, H, D]);
  const k = r([T, H, D]);
  const v = r([T, H, D]);
  const att = attention(q, k, v, { cuSeqlens: cu });
  const dAtt = r([T, H, D]);
  const rms = rmsnormResidual(x, norm, { eps: 1e-5, residual: dyC });
  const head = r([V, C]);
  const lce = linearCrossEntropy(x, head, labels, { reduction: 'sum' });
  const embed = r([V, C]);
  const params: Tensor[] = [embed, head];
  for (let l = 0; l < L; l++) params.push(r([C, C]), r([C, C]), r([C, C]), r([C, C]), r([I, C]), r([I, C]), r([C, I]), r([C]), r([C]));
  params.push(r([C]));
  const grads = params.map((p) => r(p.shape));
  const m = params.map((p) => zeros([...p.shape]));
  const v2 = params.map((p) => zeros([...p.shape]));
  const norm2 = gradNorm(grads);

  // [name, per-step calls, the op]
  const ops: Array<[string, number, () => void]> = [
    ['(nothing: the timing overhead)', 0, () => undefined],
    ['embedding', 1, () => void embedding(ids, embed)],
    ['rmsnormResidual', 2 * L + 1, () => void rmsnormResidual(x, norm, { eps: 1e-5, residual: dyC })],
    [`matmul x·Wᵀ ${C}→${C} (q k v o)`, 4 * L, () => void matmul(x, wqkv, { transB: true })],
    [`matmul x·Wᵀ ${C}→${I} (gate up)`, 2 * L, () => void matmul(x, wup, { transB: true })],
    [`matmul x·Wᵀ ${I}→${C} (down)`, L, () => void matmul(hMid, wdown, { transB: true })],
    ['rope', 2 * L, () => void rope(q, positions, { theta: config.ropeTheta })],
    ['attention', L, () => void attention(q, k, v, { cuSeqlens: cu })],
    ['swiglu', L, () => void swiglu(hMid, dyI)],
    ['linearCrossEntropy', 1, () => void linearCrossEntropy(x, head, labels, { reduction: 'sum' })],
    ['linearCrossEntropyBackward', 1, () => void linearCrossEntropyBackward(x, head, labels, lce, { reduction: 'sum' })],
    ['swigluBackward', L, () => void swigluBackward(dyI, hMid, dyI)],
    [`matmulBackward ${C}→${C} (q k v o)`, 4 * L, () => void matmulBackward(dyC, x, wqkv, { transB: true })],
    [`matmulBackward ${C}→${I} (gate up)`, 2 * L, () => void matmulBackward(dyI, x, wup, { transB: true })],
    [`matmulBackward ${I}→${C} (down)`, L, () => void matmulBackward(dyC, hMid, wdown, { transB: true })],
    ['attentionBackward', L, () => void attentionBackward(dAtt, q, k, v, att, { cuSeqlens: cu })],
    ['ropeBackward', 2 * L, () => void ropeBackward(q, positions, { theta: config.ropeTheta })],
    ['rmsnormResidualBackward', 2 * L + 1, () => void rmsnormResidualBackward(dyC, rms, norm, { dsum: dyC })],
    ['embeddingBackward', 1, () => void embeddingBackward(dyC, ids, V)],
    ['gradNorm', 1, () => void gradNorm(grads)],
    ['adamw', 1, () => adamw(params, grads, m, v2, { lr: 1e-4, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01, step: 1, maxGradNorm: 1, gradNorm: norm2 })],
  ];
  const rows: Array<[string, number, number]> = [];
  for (const [name, calls, fn] of ops) if (!values.only || name.startsWith(values.only)) rows.push([name, calls, await cpuSeconds(fn, reps)]);
  const total = rows.reduce((s, [, calls, sec]) => s + calls * sec, 0);
  console.log(`${values.preset}: T = ${T} tokens in ${batch.numDocuments} documents, C = ${C}, I = ${I}, H = ${H}, D = ${D}, V = ${V}, ${L} layers; CPU time per op call`);
  console.log(`${'op'.padEnd(36)} ${'calls'.padStart(5)} ${'µs/call'.padStart(9)} ${'µs/step'.padStart(9)} ${'share'.padStart(6)}`);
  for (const [name, calls, sec] of rows) {
    console.log(`${name.padEnd(36)} ${String(calls).padStart(5)} ${(1e6 * sec).toFixed(0).padStart(9)} ${(1e6 * calls * sec).toFixed(0).padStart(9)} ${((100 * calls * sec) / total).toFixed(1).padStart(5)}%`);
  }
  console.log(`sum of ops: ${(1e3 * total).toFixed(1)} ms CPU per step = ${(T / total).toFixed(0)} tokens per CPU-second`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
