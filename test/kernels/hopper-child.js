// Child process for hopper-gpu.test.ts: one bf16 problem large enough for a Hopper kernel on the
// device in argv[2] and on the CPU, straight through the binding: argv[3] = gemm (a product for
// kernels/hopper/gemm_hopper.h) or attention (a packed causal GQA batch, forward and backward, for
// flash_attention_hopper.h).
// The first such call runs the kernel's one-time self-test, which reports a failure on this
// process's stderr (the parent looks for it). Prints {"maxError": ..., "scale": ...}.
'use strict';
const path = require('node:path');
const root = path.resolve(__dirname, '..', '..');
const m = process.env.SEQTUNE_ADDON ? require(process.env.SEQTUNE_ADDON) : require('node-gyp-build')(root);

const [device, what] = process.argv.slice(2);
let state = 12345;
const next = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return (state >>> 8) / (1 << 24) - 0.5;
};
const random = (n, scale = 1) => Float32Array.from({ length: n }, () => scale * next());

// Ragged against the 128 x 256 x 64 GEMM tile; rows 16-byte aligned.
const M = 520, N = 776, K = 1000;
// Documents that straddle query blocks and key tiles, one of a single token; 8 query heads on 2.
const lens = [700, 333, 1, 1000], H = 8, Hkv = 2, D = 128;
const T = lens.reduce((a, b) => a + b, 0);
const cu = Int32Array.from([0, ...lens.map((_, i) => lens.slice(0, i + 1).reduce((a, b) => a + b, 0))]);
const inputs =
  what === 'gemm'
    ? { a: random(M * K), b: random(N * K) }
    : { q: random(T * H * D, 4), k: random(T * Hkv * D, 4), v: random(T * Hkv * D), dout: random(T * H * D) };

async function run(where) {
  const keep = [];
  const bf16 = (data, shape) => {
    const f32 = m.fromHost(where, 'f32', shape, data);
    keep.push(f32);
    const t = m.runOp('cast', [f32], { dtype: 'bf16' })[0];
    keep.push(t);
    return t;
  };
  let outputs;
  if (what === 'gemm') {
    outputs = m.runOp('matmul', [bf16(inputs.a, [M, K]), bf16(inputs.b, [N, K])], { transB: true });
  } else {
    const cuSeqlens = m.fromHost(where, 'i32', [cu.length], cu);
    keep.push(cuSeqlens);
    const q = bf16(inputs.q, [T, H, D]), k = bf16(inputs.k, [T, Hkv, D]), v = bf16(inputs.v, [T, Hkv, D]);
    const options = { causal: true, scale: 1 / Math.sqrt(D) };
    const [out, lse] = m.runOp('attention', [q, k, v, cuSeqlens, undefined, undefined], options);
    // The deterministic backward (the default), whose dk and dv take the Hopper passes.
    const dout = bf16(inputs.dout, [T, H, D]);
    const grads = m.runOp('attentionBackward', [dout, q, k, v, out, lse, cuSeqlens], { ...options, deterministic: true });
    outputs = [out, lse, ...grads];
  }
  const result = [];
  for (const t of outputs) {
    const [f32] = m.runOp('cast', [t], { dtype: 'f32' });
    result.push(new Float32Array(await f32.toHost()));
    keep.push(t, f32);
  }
  for (const t of keep) t.dispose();
  return result.flatMap((a) => Array.from(a));
}

(async () => {
  const gpu = await run(device);
  const cpu = await run('cpu');
  let maxError = 0, scale = 0;
  for (let i = 0; i < cpu.length; i++) {
    maxError = Math.max(maxError, Number.isFinite(gpu[i]) ? Math.abs(gpu[i] - cpu[i]) : Infinity);
    scale = Math.max(scale, Math.abs(cpu[i]));
  }
  console.log(JSON.stringify({ maxError, scale, elements: cpu.length }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
