import { spawnSync } from 'node:child_process';
import t, { type Test } from 'tap';
import { isSeqtuneError, type ErrorCode } from '../../lib/errors';
import { native, packageRoot, type NativeBinding } from '../../lib/native';
import { matmul, matmulBackward, type MatmulOptions } from '../../lib/ops';
import { full, sync, tensor, type DType, type Tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { gradCheck, project } from '../helpers/gradcheck';
import { hostRng, randomArray, testSeed } from '../helpers/random';
import { matmulBackwardRef, matmulGeometry, matmulRef } from '../reference/matmul';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const combos = [
  { transA: false, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: false },
  { transA: true, transB: true },
];

const numel = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);
const stored = (lead: number[], rows: number, cols: number, trans: boolean) => [...lead, ...(trans ? [cols, rows] : [rows, cols])];

/**
 * Tolerance against the f64 reference for sums of `depth` products of N(0, 1) values: f32/f64
 * rounding grows like sqrt(depth); bf16/f16 outputs are off by one rounding of the result (the
 * reference uses the rounded inputs read back from the tensors).
 */
function tol(dtype: DType, depth: number): { atol: number; rtol: number } {
  const growth = 3 * Math.sqrt(Math.max(depth, 1));
  if (dtype === 'bf16') return { atol: 1e-4 * growth, rtol: 2 ** -7 };
  if (dtype === 'f16') return { atol: 1e-4 * growth, rtol: 2 ** -9 };
  return { atol: tolerance[dtype].atol * growth, rtol: tolerance[dtype].rtol };
}

const scaled = (tl: { atol: number; rtol: number }, scale: number) => ({ atol: tl.atol * scale, rtol: tl.rtol });

/** A random tensor in dtype and its values as stored (rounded for bf16/f16). */
async function operand(shape: number[], dtype: DType): Promise<{ t: Tensor; v: ArrayLike<number> }> {
  const x = tensor(randomArray(rng, numel(shape)), shape, { dtype });
  return { t: x, v: await x.toArray() };
}

interface Case {
  lead: number[];
  M: number;
  N: number;
  K: number;
  shared?: boolean;
  bias?: boolean;
  alpha?: number;
}

/** Forward and backward of one case against the reference. */
async function check(t: Test, c: Case, dtype: DType, opts: { transA: boolean; transB: boolean }, backward: boolean) {
  const aShape = stored(c.lead, c.M, c.K, opts.transA);
  const bShape = stored(c.shared ? [] : c.lead, c.K, c.N, opts.transB);
  const what = `${dtype} a[${aShape}] b[${bShape}] ${opts.transA ? 'Aᵀ' : 'A'}·${opts.transB ? 'Bᵀ' : 'B'}${c.bias ? ' +bias' : ''}`;
  const a = await operand(aShape, dtype);
  const b = await operand(bShape, dtype);
  const bias = c.bias ? await operand([c.N], dtype) : undefined;
  const options: MatmulOptions = { ...opts, alpha: c.alpha, bias: bias?.t };
  const out = matmul(a.t, b.t, options);
  t.same(out.shape, [...c.lead, c.M, c.N], `${what}: output shape`);
  t.equal(out.dtype, dtype);
  const want = matmulRef(a.v, aShape, b.v, bShape, { ...opts, alpha: c.alpha, bias: bias?.v });
  assertClose(t, await out.toArray(), want, tol(dtype, c.K), what);
  if (!backward) return;
  const dc = await operand(out.shape as number[], dtype);
  const grads = matmulBackward(dc.t, a.t, b.t, options);
  const ref = matmulBackwardRef(dc.v, a.v, aShape, b.v, bShape, { ...opts, alpha: c.alpha });
  const rows = numel(c.lead) * c.M;
  assertClose(t, await grads.da!.toArray(), ref.da, tol(dtype, c.N), `${what}: da`);
  assertClose(t, await grads.db!.toArray(), ref.db, tol(dtype, c.shared ? rows : c.M), `${what}: db`);
  if (c.bias) assertClose(t, await grads.dbias!.toArray(), ref.dbias, tol(dtype, rows), `${what}: dbias`);
  else t.equal(grads.dbias, undefined, 'no dbias without a bias');
}

t.test('2-D products of every size mix and transpose (f32, f64)', async (t) => {
  const sizes = [1, 3, 17, 65];
  for (const opts of combos) {
    for (const M of sizes) {
      for (const N of sizes) {
        for (const K of sizes) {
          await check(t, { lead: [], M, N, K, alpha: rng.normal() }, 'f32', opts, false);
          if ((M + N + K) % 3 === 0) await check(t, { lead: [], M, N, K }, 'f64', opts, false);
        }
      }
    }
  }
});

t.test('larger products: several row, column and depth blocks, with bias', async (t) => {
  const shapes: Array<[number, number, number]> = [
    [200, 150, 290], // rows past one MC block, depth past one KC slice
    [150, 67, 520],
    [7, 4100, 40], // few rows: columns split between threads, past one NC block
  ];
  for (const [M, N, K] of shapes) {
    for (const opts of combos) await check(t, { lead: [], M, N, K, bias: true, alpha: 0.5 }, 'f32', opts, true);
  }
  await check(t, { lead: [], M: 96, N: 130, K: 300, bias: true }, 'f64', combos[1], true);
});

t.test('batched and 2-D-broadcast products, forward and backward, f32/f64/bf16/f16', async (t) => {
  for (const opts of combos) {
    await check(t, { lead: [2, 3], M: 17, N: 9, K: 13, bias: true, alpha: 1.5 }, 'f32', opts, true);
    await check(t, { lead: [2, 3], M: 17, N: 9, K: 13, shared: true, bias: true, alpha: -0.75 }, 'f32', opts, true);
    await check(t, { lead: [4], M: 65, N: 33, K: 70, shared: true }, 'f64', opts, true);
    await check(t, { lead: [3], M: 20, N: 35, K: 65, bias: true }, 'bf16', opts, true);
    await check(t, { lead: [2], M: 9, N: 19, K: 30, shared: true, bias: true, alpha: 2 }, 'f16', opts, true);
  }
});

t.test('empty dimensions', async (t) => {
  const bias = tensor([1, 2, 3, 4], [4]);
  const noDepth = matmul(tensor(new Float32Array(0), [3, 0]), tensor(new Float32Array(0), [0, 4]), { bias });
  t.same(Array.from(await noDepth.toArray()), [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4], 'K = 0 leaves the bias');
  const noRows = matmul(tensor(new Float32Array(0), [2, 0, 5]), tensor(randomArray(rng, 15), [5, 3], { dtype: 'f32' }));
  t.same(noRows.shape, [2, 0, 3]);
  t.equal((await noRows.toArray()).length, 0);
});

t.test('fresh outputs are written, never read: NaN left in recycled memory does not leak in', async (t) => {
  // The allocator hands freed blocks back, so the outputs here likely land on NaN-filled memory.
  for (const [M, N, K] of [[17, 9, 5], [64, 48, 300]]) {
    for (const dtype of ['f32', 'f64'] as const) {
      const a = await operand([M, K], dtype);
      const b = await operand([K, N], dtype);
      for (let i = 0; i < 4; i++) full([M, N], NaN, { dtype }).dispose();
      await sync();
      const got = await matmul(a.t, b.t).toArray();
      assertClose(t, got, matmulRef(a.v, [M, K], b.v, [K, N]), tol(dtype, K), `${dtype} [${M},${N}]`);
    }
  }
});

t.test('gradients match finite differences (f64)', async (t) => {
  for (const opts of combos) {
    for (const shared of [false, true]) {
      const [M, N, K] = [3, 4, 5];
      const aShape = stored([2], M, K, opts.transA);
      const bShape = stored(shared ? [] : [2], K, N, opts.transB);
      const alpha = 0.5 + rng.uniform();
      const inputs = { a: randomArray(rng, numel(aShape)), b: randomArray(rng, numel(bShape)), bias: randomArray(rng, N) };
      const outShape = matmulGeometry(aShape, bShape, opts).outShape;
      const w = randomArray(rng, numel(outShape));
      const f64 = (x: Float64Array, shape: number[]) => tensor(x, shape, { dtype: 'f64' });
      const options = (x: Record<string, Float64Array>) => ({ ...opts, alpha, bias: f64(x.bias, [N]) });
      const grads = matmulBackward(f64(w, outShape), f64(inputs.a, aShape), f64(inputs.b, bShape), options(inputs));
      const analytic = { a: await grads.da!.toArray(), b: await grads.db!.toArray(), bias: await grads.dbias!.toArray() };
      const loss = async (x: Record<string, Float64Array>) =>
        project(await matmul(f64(x.a, aShape), f64(x.b, bShape), options(x)).toArray(), w);
      const result = await gradCheck(inputs, analytic, loss, rng);
      t.ok(result.worst.error < 1e-6, `${JSON.stringify(opts)} shared ${shared}: ${result.checked} checked, worst ${JSON.stringify(result.worst)}`);
    }
  }
});

// ---- thread-count determinism ------------------------------------------------------------------

interface DetCase {
  aShape: number[];
  bShape: number[];
  transA: boolean;
  transB: boolean;
  bias: boolean;
  alpha: number;
}

const detCases: DetCase[] = [
  { aShape: [200, 290], bShape: [150, 290], transA: false, transB: true, bias: true, alpha: 0.7 },
  { aShape: [300, 7], bShape: [300, 4100], transA: true, transB: false, bias: false, alpha: 1 },
  { aShape: [3, 67, 150], bShape: [3, 150, 70], transA: false, transB: false, bias: true, alpha: -1.25 },
  { aShape: [2, 270, 65], bShape: [200, 270], transA: true, transB: true, bias: true, alpha: 1 },
];

/**
 * Runs every case (matmul, then matmulBackward with the output as dc) on inputs drawn from the
 * counter-based generator, and returns each tensor's bytes in base64: the inputs too when asked.
 * Self-contained plain JavaScript once compiled: child processes run it from its source text.
 */
async function runDetCases(binding: NativeBinding, cases: DetCase[], drawSeed: number, withInputs: boolean): Promise<string[][]> {
  const results: string[][] = [];
  let offset = 0;
  for (const c of cases) {
    const draw = (shape: number[]) => binding.runOp('randomNormal', [], { shape, seed: drawSeed, offset: offset++, dtype: 'f32' })[0];
    const a = draw(c.aShape);
    const b = draw(c.bShape);
    const bias = c.bias ? draw([c.transB ? c.bShape[c.bShape.length - 2] : c.bShape[c.bShape.length - 1]]) : null;
    const attrs = { transA: c.transA, transB: c.transB, alpha: c.alpha };
    const [out] = binding.runOp('matmul', [a, b, bias], attrs);
    const grads = binding.runOp('matmulBackward', [out, a, b], { ...attrs, needA: true, needB: true, needBias: c.bias });
    const tensors = [...(withInputs ? [a, b, ...(bias ? [bias] : [])] : []), out, ...grads];
    results.push(await Promise.all(tensors.map(async (x) => Buffer.from(await x.toHost()).toString('base64'))));
  }
  return results;
}

function runInChild(env: Record<string, string>, drawSeed: number): string[][] {
  const script = [
    `const path = require('path');`,
    `const root = ${JSON.stringify(packageRoot)};`,
    `const addon = process.env.SEQTUNE_ADDON ? require(path.resolve(process.env.SEQTUNE_ADDON))`,
    `  : require(require.resolve('node-gyp-build', { paths: [root] }))(root);`,
    `(${runDetCases.toString()})(addon, ${JSON.stringify(detCases)}, ${drawSeed}, false)`,
    `  .then((r) => process.stdout.write(JSON.stringify(r)), (e) => { console.error(e); process.exit(1); });`,
  ].join('\n');
  const child = spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (child.status !== 0) throw new Error(`child (${JSON.stringify(env)}) failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as string[][];
}

const f32 = (base64: string) => {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
};

t.test('results are bit-identical for 1, 2 and 3 threads; the portable kernel agrees', async (t) => {
  const drawSeed = seed & 0x7fffffff;
  const local = await runDetCases(native(), detCases, drawSeed, true);
  // The in-process run must itself be right, or matching bytes would prove nothing.
  detCases.forEach((c, i) => {
    const [a, b, ...rest] = local[i].map(f32);
    const bias = c.bias ? rest.shift() : undefined;
    const [out, da, db, dbias] = rest;
    const opts = { transA: c.transA, transB: c.transB, alpha: c.alpha };
    const g = matmulGeometry(c.aShape, c.bShape, opts);
    assertClose(t, out, matmulRef(a, c.aShape, b, c.bShape, { ...opts, bias }), tol('f32', g.K), `case ${i} forward`);
    // dc is the output itself: its entries are about |alpha|·sqrt(K) + 1, not 1.
    const grad = (depth: number) => scaled(tol('f32', depth), Math.abs(c.alpha) * Math.sqrt(g.K) + 1);
    const ref = matmulBackwardRef(out, a, c.aShape, b, c.bShape, opts);
    assertClose(t, da, ref.da, grad(g.N), `case ${i} da`);
    assertClose(t, db, ref.db, grad(g.batch * g.M), `case ${i} db`);
    if (c.bias) assertClose(t, dbias, ref.dbias, grad(g.batch * g.M), `case ${i} dbias`);
  });
  const outputsOnly = local.map((tensors, i) => tensors.slice(detCases[i].bias ? 3 : 2));
  for (const threads of [1, 2, 3]) {
    const got = runInChild({ SEQTUNE_NUM_THREADS: String(threads) }, drawSeed);
    t.ok(
      got.every((tensors, i) => tensors.length === outputsOnly[i].length && tensors.every((x, j) => x === outputsOnly[i][j])),
      `${threads} thread(s): every output byte matches`,
    );
  }
  const portable = runInChild({ SEQTUNE_CPU_SIMD: '0' }, drawSeed);
  portable.forEach((tensors, i) => {
    const c = detCases[i];
    const g = matmulGeometry(c.aShape, c.bShape, c);
    assertClose(t, f32(tensors[0]), f32(outputsOnly[i][0]), tol('f32', g.K), `case ${i}: portable kernel, forward`);
    const grad = scaled(tol('f32', g.N), Math.abs(c.alpha) * Math.sqrt(g.K) + 1);
    assertClose(t, f32(tensors[1]), f32(outputsOnly[i][1]), grad, `case ${i}: portable kernel, da`);
  });
});

// ---- validation ----------------------------------------------------------------------------------

function expectError(t: Test, fn: () => unknown, code: ErrorCode, pattern: RegExp, what: string) {
  try {
    fn();
    t.fail(`${what}: no error`);
  } catch (error) {
    t.ok(isSeqtuneError(error, code), `${what}: ${code} (${(error as Error).message})`);
    t.match((error as Error).message, pattern, `${what}: message names the op and shapes`);
  }
}

t.test('bad inputs fail with clear SeqtuneErrors', async (t) => {
  const x = (shape: number[], dtype: DType = 'f32') => tensor(new Float64Array(numel(shape)), shape, { dtype });
  expectError(t, () => matmul(x([4]), x([4, 2])), 'ERR_SHAPE', /matmul: a must have rank >= 2.*\[4\]/, 'rank-1 a');
  expectError(t, () => matmul(x([2, 4]), x([4])), 'ERR_SHAPE', /matmul: b must have rank >= 2/, 'rank-1 b');
  expectError(t, () => matmul(x([2, 3]), x([4, 5])), 'ERR_SHAPE', /matmul: inner dimensions differ.*\[2,3\].*K = 3.*\[4,5\].*K = 4/, 'K mismatch');
  expectError(t, () => matmul(x([2, 3]), x([4, 5]), { transA: true }), 'ERR_SHAPE', /transposed.*K = 2/, 'K mismatch, transA');
  expectError(t, () => matmul(x([2, 3]), x([3, 5]), { transB: true }), 'ERR_SHAPE', /K = 5/, 'K mismatch, transB');
  expectError(t, () => matmul(x([2, 3, 4]), x([3, 4, 5])), 'ERR_SHAPE', /matmul: batch dimensions differ.*\[2,3,4\].*\[3,4,5\]/, 'batch mismatch');
  expectError(t, () => matmul(x([3, 4]), x([1, 4, 5])), 'ERR_SHAPE', /batch dimensions differ/, 'batched b, 2-D a');
  expectError(t, () => matmul(x([3, 4]), x([4, 5]), { bias: x([4]) }), 'ERR_SHAPE', /matmul: bias must have shape \[5\].*\[4\]/, 'bias length');
  expectError(t, () => matmul(x([3, 4]), x([4, 5]), { bias: x([1, 5]) }), 'ERR_SHAPE', /bias must have shape \[5\]/, 'bias rank');
  expectError(t, () => matmul(x([3, 4]), x([4, 5], 'f64')), 'ERR_DTYPE', /matmul: a .* and b .* same dtype/, 'mixed dtypes');
  expectError(t, () => matmul(x([3, 4]), x([4, 5]), { bias: x([5], 'bf16') }), 'ERR_DTYPE', /bias/, 'bias dtype');
  expectError(t, () => matmul(x([3, 4], 'i32'), x([4, 5], 'i32')), 'ERR_DTYPE', /matmul: a must be a floating-point/, 'integer inputs');
  expectError(t, () => native().runOp('matmul', [x([3, 4]).handle, null], {}), 'ERR_ARGUMENT', /matmul: missing input 'b'/, 'missing b');
  expectError(t, () => native().runOp('matmul', [x([3, 4]).handle, x([4, 2]).handle], { alpha: 'two' }), 'ERR_ARGUMENT', /alpha/, 'bad alpha');
  const [a, b] = [x([2, 3, 4]), x([4, 5])];
  expectError(t, () => matmulBackward(x([2, 3, 4]), a, b), 'ERR_SHAPE', /matmulBackward: dc must have shape \[2,3,5\]/, 'dc shape');
  expectError(t, () => matmulBackward(x([2, 3, 5], 'f64'), a, b), 'ERR_DTYPE', /matmulBackward: a .* and dc .* same dtype/, 'dc dtype');
  expectError(t, () => matmulBackward(x([2, 3, 5]), a, x([3, 5])), 'ERR_SHAPE', /matmulBackward: inner dimensions differ/, 'backward K');
  const none = matmulBackward(x([2, 3, 5]), a, b, { needA: false, needB: false });
  t.same(Object.keys(none), [], 'nothing requested, nothing returned');
  const onlyB = matmulBackward(x([2, 3, 5]), a, b, { needA: false });
  t.same(onlyB.db?.shape, [4, 5], 'only db requested');
  t.equal(onlyB.da, undefined);
});
