// Child process for gemm-hopper-gpu.test.ts: one bf16 product large enough for the Hopper GEMM
// (kernels/gemm_hopper.h) on the device in argv[2] and on the CPU, straight through the binding.
// Its first such product runs the kernel's one-time self-test, which reports a failure on this
// process's stderr (the parent looks for it). Prints {"maxError": ..., "scale": ...}.
'use strict';
const path = require('node:path');
const root = path.resolve(__dirname, '..', '..');
const m = process.env.SEQTUNE_ADDON ? require(process.env.SEQTUNE_ADDON) : require('node-gyp-build')(root);

const device = process.argv[2];
const M = 520, N = 776, K = 1000;  // ragged against the 128 x 256 x 64 tile; rows 16-byte aligned
let state = 12345;
const next = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return (state >>> 8) / (1 << 24) - 0.5;
};
const a = Float32Array.from({ length: M * K }, next);
const b = Float32Array.from({ length: N * K }, next);

async function product(where) {
  const keep = [];
  const bf16 = (data, shape) => {
    const f32 = m.fromHost(where, 'f32', shape, data);
    keep.push(f32);
    const t = m.runOp('cast', [f32], { dtype: 'bf16' })[0];
    keep.push(t);
    return t;
  };
  const [c] = m.runOp('matmul', [bf16(a, [M, K]), bf16(b, [N, K])], { transB: true });
  const [c32] = m.runOp('cast', [c], { dtype: 'f32' });
  const out = new Float32Array(await c32.toHost());
  for (const t of [...keep, c, c32]) t.dispose();
  return out;
}

(async () => {
  const gpu = await product(device);
  const cpu = await product('cpu');
  let maxError = 0, scale = 0;
  for (let i = 0; i < cpu.length; i++) {
    maxError = Math.max(maxError, Number.isFinite(gpu[i]) ? Math.abs(gpu[i] - cpu[i]) : Infinity);
    scale = Math.max(scale, Math.abs(cpu[i]));
  }
  console.log(JSON.stringify({ maxError, scale }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
