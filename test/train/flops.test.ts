// The MFU accounting (lib/train/flops.ts) against an independent count: every matmul of a
// training step enumerated from the checkpoint's weight shapes, and causal attention summed key by
// key over the packed documents.
import t from 'tap';
import { linearNames } from '../../lib/model/block';
import { llamaArch } from '../../lib/model/config';
import { expectedWeights } from '../../lib/model/io/weights';
import { presetConfig } from '../../lib/model/presets';
import { attentionSpan, flopsPerToken, modelFlopsUtilisation, peakBf16Tflops } from '../../lib/train/flops';
import { HostRng } from '../../lib/rng';

const rng = new HostRng(Date.now() >>> 0);

t.test('attentionSpan is Σn²/Σn of the packed documents', async (t) => {
  const lengths = Array.from({ length: 1 + rng.int(6) }, () => 1 + rng.int(300));
  const cu = [0];
  for (const n of lengths) cu.push(cu[cu.length - 1] + n);
  const squares = lengths.reduce((s, n) => s + n * n, 0);
  const tokens = lengths.reduce((s, n) => s + n, 0);
  t.equal(attentionSpan(Int32Array.from(cu)), squares / tokens);
  t.equal(attentionSpan([0, 77]), 77, 'one document: its length');
  t.equal(attentionSpan([0]), 0, 'no documents');
});

for (const arch of ['llama', 'qwen2'] as const) {
  t.test(`flopsPerToken (${arch}) equals an enumeration of the step's matmuls`, async (t) => {
    const config = presetConfig('tiny', { arch, bosTokenId: 1, eosTokenId: 2 });
    const a = llamaArch(config);
    // every matrix of the checkpoint but the embedding lookup (a tied head is the embedding, used once as a matmul)
    let forwardPerToken = 0;
    for (const [name, shape] of expectedWeights(config)) {
      if (shape.length !== 2 || name === 'model.embed_tokens.weight') continue;
      forwardPerToken += 2 * shape[0] * shape[1];
    }
    if (config.tieWordEmbeddings) forwardPerToken += 2 * config.vocabSize * config.hiddenSize;
    const seq = 1 + rng.int(512);
    // causal attention: token t of a document attends to t+1 keys, QKᵀ and PV are 2·d_q FLOPs each per key
    const dq = a.numHeads * a.headDim;
    let keys = 0;
    for (let i = 0; i < seq; i++) keys += i + 1;
    const attentionForward = (a.numLayers * 4 * dq * keys) / seq;

    const full = flopsPerToken(a, { mode: 'full', seq, loraR: 0, targets: [] });
    // forward + input gradient + weight gradient = 3 × forward for the matmuls and for attention;
    // the formula counts seq/2 keys per token where the enumeration counts (seq+1)/2
    const matmulsFull = 3 * forwardPerToken;
    t.ok(Math.abs(full - matmulsFull - 3 * attentionForward * (seq / (seq + 1))) < 1e-6 * full, `full: ${full}`);

    const r = 1 + rng.int(64);
    const targets = linearNames.filter(() => rng.uniform() < 0.6);
    const lora = flopsPerToken(a, { mode: 'lora', seq, loraR: r, targets });
    // frozen weights: forward + input gradient; each adapted [out, in] matrix adds A [r, in] and B [out, r]
    // with forward, input and weight gradients: 3 · 2 · r · (in + out)
    let adapters = 0;
    for (const [name, shape] of expectedWeights(config)) {
      const linear = linearNames.find((l) => name.endsWith(`.${linearHfSuffix(l)}.weight`));
      if (linear && targets.includes(linear)) adapters += 6 * r * (shape[0] + shape[1]);
    }
    t.ok(Math.abs(lora - 2 * forwardPerToken - adapters - 3 * attentionForward * (seq / (seq + 1))) < 1e-6 * lora, `lora: ${lora}`);
  });
}

function linearHfSuffix(name: (typeof linearNames)[number]): string {
  return { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' }[name];
}

t.test('MFU against the dense bf16 peak of known GPUs, none on a CPU', async (t) => {
  t.equal(peakBf16Tflops('NVIDIA H100 80GB HBM3'), 989.4);
  t.equal(peakBf16Tflops('NVIDIA H200'), 989.4);
  t.equal(peakBf16Tflops('NVIDIA H100 PCIe'), 756);
  t.equal(peakBf16Tflops('NVIDIA A100-SXM4-80GB'), 312);
  t.equal(modelFlopsUtilisation(1e15, 'AMD EPYC'), null);
  const rate = rng.uniform() * 5e14;
  t.ok(Math.abs(modelFlopsUtilisation(rate, 'NVIDIA H100 80GB HBM3')! - rate / 989.4e12) < 1e-12);
});
