/**
 * The CUDA wiring of the ops: every op is registered with a CUDA kernel exactly when the addon was
 * compiled with CUDA; on a usable GPU, what the kernels do not support is refused before anything
 * is queued, and a bad index fails with the CPU's own message. Numerical agreement with the CPU is
 * test/parity.test.ts's job.
 */
import t from 'tap';
import { devices } from '../../lib/device';
import {
  adamw,
  attention,
  attentionBackward,
  crossEntropy,
  crossEntropyBackward,
  embedding,
  embeddingBackward,
  opSupport,
  rmsnormResidual,
  rmsnormResidualBackward,
} from '../../lib/ops';
import { sync, tensor, Tensor } from '../../lib/tensor';

// Every op the addon registers (native/ops), by family; each has a CUDA kernel in a CUDA build.
// Listed, not only read from the registry, so that an op missing from the build fails too and a
// new op has to be added here (and so gets checked). ropeBackward and dropoutBackward are the rope
// and dropout ops; batched products are matmul.
const ops: Record<string, string[]> = {
  elementwise: ['add', 'addInplace', 'mul', 'scale', 'cast', 'copyInto', 'fill', 'sum', 'randomNormal', 'randomUniform'],
  'transformer block': ['rmsnormResidual', 'rmsnormResidualBackward', 'rope', 'swiglu', 'swigluBackward', 'dropout', 'embedding', 'embeddingBackward'],
  'GEMM and attention': ['matmul', 'matmulBackward', 'loraLinear', 'loraLinearBackward', 'attention', 'attentionBackward', 'kvCacheWrite'],
  'loss and optimizer': ['crossEntropy', 'crossEntropyBackward', 'linearCrossEntropy', 'linearCrossEntropyBackward', 'adamw', 'gradNorm', 'clipByNorm'],
};
const listed = Object.values(ops).flat();

const report = devices();
const gpu = report.gpus.find((g) => g.usable);
const noGpu = gpu ? false : `no usable GPU: ${report.cuda.unusableReason ?? 'none found'}`;
const cuda = gpu ? `cuda:${gpu.index}` : 'cuda';
// buildInfo().cudaCompiled: the addon was compiled with SEQTUNE_CUDA, which is also what makes
// REGISTER_OP_CUDA register a kernel.
const cpuOnlyBuild = report.cuda.compiled
  ? false
  : 'the addon was built without CUDA (no nvcc at build time, or SEQTUNE_CUDA=OFF): there are no CUDA registrations to check';

t.test('the registry holds exactly the listed ops', async (t) => {
  t.same([...opSupport().keys()].sort(), [...listed].sort(), 'a new op goes into `ops` above; a listed op must be registered');
});

t.test('a CUDA build registers a CUDA kernel for every op', { skip: cpuOnlyBuild }, async (t) => {
  const support = opSupport();
  // The listed ops and anything else registered, so neither list can hide a CPU-only op.
  for (const op of new Set([...listed, ...support.keys()])) t.equal(support.get(op)?.cuda, true, `${op}: has a CUDA kernel`);
});

t.test('a CPU-only build claims no CUDA kernel', { skip: report.cuda.compiled ? 'the addon was built with CUDA' : false }, async (t) => {
  for (const [op, { cuda }] of opSupport()) t.equal(cuda, false, `${op}: no CUDA kernel`);
});

t.test('what the CUDA kernels do not support is refused before anything is queued', { skip: noGpu }, async (t) => {
  const f64 = (n: number, shape: number[]) => tensor(new Float64Array(n).fill(0.5), shape, { device: cuda });
  const f32 = (n: number, shape: number[]) => tensor(new Float64Array(n).fill(0.5), shape, { dtype: 'f32', device: cuda });
  const notImplemented = (fn: () => unknown, message: RegExp) => t.throws(fn, { code: 'ERR_NOT_IMPLEMENTED', message });

  notImplemented(() => rmsnormResidual(f64(6, [2, 3]), f64(3, [3]), { eps: 1e-5 }), /^rmsnormResidual: f64 is not implemented on cuda/);
  const sum = f32(6, [2, 3]);
  const forward = { out: sum, sum, rstd: f64(2, [2]) };
  notImplemented(() => rmsnormResidualBackward(f32(6, [2, 3]), forward, f32(3, [3])), /^rmsnormResidualBackward: rstd must be f32 on cuda/);

  const logits = f32(6, [2, 3]);
  const labels = tensor(Int32Array.from([0, 2]), [2], { device: cuda });
  const stats = { loss: f64(1, [1]), lse: f64(2, [2]), count: f64(1, [1]) };
  notImplemented(() => crossEntropyBackward(logits, labels, stats), /^crossEntropyBackward: on cuda .* lse and count must be f32/);

  const hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 };
  notImplemented(() => adamw([f64(4, [4])], [f32(4, [4])], [f32(4, [4])], [f32(4, [4])], hyper), /^adamw: on cuda .* m\[0\] and v\[0\] must have the dtype of params\[0\] \(f64\)/);

  // Attention takes f32, bf16 and f16 at any head dim up to 256 (the SIMT kernels beyond 64/128).
  const cu = tensor(Int32Array.from([0, 2]), [2], { device: cuda });
  const q64 = f64(2 * 8, [2, 1, 8]);
  notImplemented(() => attention(q64, q64, q64, { cuSeqlens: cu }), /^attention: f64 is not implemented on cuda/);
  const wide = f32(2 * 264, [2, 1, 264]);
  notImplemented(() => attention(wide, wide, wide, { cuSeqlens: cu }), /^attention: on cuda .* head dims up to 256, got 264/);
  await sync(cuda);
});

// The rejection message of the first output's read-back.
async function failure(outputs: Tensor[]): Promise<{ code?: string; message: string }> {
  try {
    await outputs[0].toArray();
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { code: err.code, message: err.message };
  } finally {
    await sync(outputs[0].device).catch(() => undefined);
  }
  return { message: 'no error' };
}

t.test('a bad index fails on cuda with the CPU error', { skip: noGpu }, async (t) => {
  const runs: Array<[string, (device: string) => Tensor[]]> = [
    ['embedding', (d) => [embedding(tensor(Int32Array.from([0, 4, 7, -1]), [4], { device: d }), tensor(new Float64Array(15).fill(1), [5, 3], { dtype: 'f32', device: d }))]],
    ['embeddingBackward', (d) => [embeddingBackward(tensor(new Float64Array(12).fill(1), [4, 3], { dtype: 'bf16', device: d }), tensor(Int32Array.from([0, -3, 9, 1]), [4], { device: d }), 5)]],
    ['crossEntropy', (d) => {
      const f = crossEntropy(tensor(new Float64Array(15).fill(0.25), [3, 5], { dtype: 'f32', device: d }), tensor(Int32Array.from([-100, 5, -2]), [3], { device: d }));
      return [f.loss, f.lse, f.count];
    }],
    ['crossEntropyBackward', (d) => {
      const logits = tensor(new Float64Array(15).fill(0.25), [3, 5], { dtype: 'f32', device: d });
      const good = crossEntropy(logits, tensor(Int32Array.from([0, 1, 2]), [3], { device: d }));
      return [crossEntropyBackward(logits, tensor(Int32Array.from([0, 1 << 30, 7]), [3], { device: d }), good)];
    }],
    // Sequence 1 ends before it starts; the kernels would skip it silently.
    ['attention', (d) => {
      const x = tensor(new Float64Array(4 * 64).fill(0.5), [4, 1, 64], { dtype: 'bf16', device: d });
      const f = attention(x, x, x, { cuSeqlens: tensor(Int32Array.from([0, 3, 2, 4]), [4], { device: d }) });
      return [f.out, f.lse];
    }],
    ['attention (SIMT: f32, D 24)', (d) => {
      const x = tensor(new Float64Array(4 * 24).fill(0.5), [4, 1, 24], { dtype: 'f32', device: d });
      const f = attention(x, x, x, { cuSeqlens: tensor(Int32Array.from([0, 3, 2, 4]), [4], { device: d }) });
      return [f.out, f.lse];
    }],
    ['attentionBackward', (d) => {
      const x = tensor(new Float64Array(4 * 64).fill(0.5), [4, 1, 64], { dtype: 'bf16', device: d });
      const fwd = attention(x, x, x, { cuSeqlens: tensor(Int32Array.from([0, 4]), [2], { device: d }) });
      const g = attentionBackward(x, x, x, x, fwd, { cuSeqlens: tensor(Int32Array.from([0, 3, 2, 4]), [4], { device: d }) });
      return [g.dq, g.dk, g.dv];
    }],
  ];
  for (const [op, run] of runs) {
    const cpu = await failure(run('cpu'));
    t.equal(cpu.code, 'ERR_INDEX', `${op} on cpu: ${cpu.message}`);
    t.same(await failure(run(cuda)), cpu, `${op} on ${cuda}: the same error`);
  }
  const ok = embedding(tensor(Int32Array.from([4, 0]), [2], { device: cuda }), tensor(new Float64Array(15).fill(2), [5, 3], { dtype: 'f32', device: cuda }));
  t.same(Array.from(await ok.toArray()), new Array(6).fill(2), 'later ops still run');
});
