import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import t from 'tap';
import { native } from '../../lib/native';
import type { HostRng } from '../../lib/rng';
import { attention, attentionBackward, kvCacheWrite } from '../../lib/ops';
import { DType, scope, sync, Tensor, tensor } from '../../lib/tensor';
import { assertClose, mismatch, tolerance } from '../helpers/compare';
import { gradCheck, project } from '../helpers/gradcheck';
import { hostRng, randomArray, testSeed } from '../helpers/random';
import {
  AttentionProblem,
  attentionBackwardReference,
  attentionCacheReference,
  attentionReference,
} from '../reference/attention';

// lse is f64 for f64 inputs, so f64 results (the backward recomputes P from lse) stay exact.
const lseTolerance = tolerance.f64;
const f64ViaLse = { atol: 1e-9, rtol: 1e-8 };
const f32Backward = { atol: 5e-5, rtol: 1e-3 };

/** cuSeqlens for `docs` documents of uneven random lengths (>= 1 each when T allows) over T tokens. */
function splitDocs(rng: HostRng, tokens: number, docs: number): number[] {
  const cuts = new Set<number>();
  while (cuts.size < Math.min(docs, tokens) - 1) cuts.add(1 + rng.int(tokens - 1));
  return [0, ...[...cuts].sort((a, b) => a - b), tokens];
}

function problem(rng: HostRng, tokens: number, docs: number, heads: number, kvHeads: number, headDim: number, causal: boolean) {
  const cuSeqlens = splitDocs(rng, tokens, docs);
  const p: AttentionProblem = { tokens, heads, kvHeads, headDim, cuSeqlens, causal, scale: 1 / Math.sqrt(headDim) };
  return {
    p,
    q: randomArray(rng, tokens * heads * headDim),
    k: randomArray(rng, tokens * kvHeads * headDim),
    v: randomArray(rng, tokens * kvHeads * headDim),
  };
}

function describe(p: AttentionProblem): string {
  const lens = [];
  for (let b = 0; b + 1 < p.cuSeqlens.length; b++) lens.push(p.cuSeqlens[b + 1] - p.cuSeqlens[b]);
  return `T=${p.tokens} docs=[${lens}] H=${p.heads} Hkv=${p.kvHeads} D=${p.headDim} ${p.causal ? 'causal' : 'full'}`;
}

function cuTensor(p: AttentionProblem): Tensor {
  return tensor(Int32Array.from(p.cuSeqlens), [p.cuSeqlens.length]);
}

/** Runs attention; returns out, lse and the inputs as the op saw them (rounded for bf16). */
async function runForward(p: AttentionProblem, q: Float64Array, k: Float64Array, v: Float64Array, dtype: DType, scaleAttr?: number) {
  return scope(async () => {
    const tq = tensor(q, [p.tokens, p.heads, p.headDim], { dtype });
    const tk = tensor(k, [p.tokens, p.kvHeads, p.headDim], { dtype });
    const tv = tensor(v, [p.tokens, p.kvHeads, p.headDim], { dtype });
    const r = attention(tq, tk, tv, { cuSeqlens: cuTensor(p), causal: p.causal, scale: scaleAttr });
    const seen = async (x: Tensor) => Float64Array.from(await x.toArray());
    return { out: await seen(r.out), lse: await seen(r.lse), q: await seen(tq), k: await seen(tk), v: await seen(tv) };
  });
}

async function runBackward(p: AttentionProblem, dout: Float64Array, q: Float64Array, k: Float64Array, v: Float64Array, dtype: DType) {
  return scope(async () => {
    const shapeQ = [p.tokens, p.heads, p.headDim];
    const shapeK = [p.tokens, p.kvHeads, p.headDim];
    const [tq, tdo] = [tensor(q, shapeQ, { dtype }), tensor(dout, shapeQ, { dtype })];
    const [tk, tv] = [tensor(k, shapeK, { dtype }), tensor(v, shapeK, { dtype })];
    const options = { cuSeqlens: cuTensor(p), causal: p.causal, scale: p.scale };
    const g = attentionBackward(tdo, tq, tk, tv, attention(tq, tk, tv, options), options);
    const seen = async (x: Tensor) => Float64Array.from(await x.toArray());
    return { dq: await seen(g.dq), dk: await seen(g.dk), dv: await seen(g.dv) };
  });
}

const childSeed = process.env.SEQTUNE_ATTENTION_DIGEST_SEED;
if (childSeed !== undefined) {
  void printDigest(Number(childSeed));
} else {
  defineTests();
}

/**
 * Child mode of the thread-count test: prints a hash of the bytes of a forward and backward, and
 * how many values miss the reference (so a child running the portable kernels is checked too).
 */
async function printDigest(seed: number): Promise<void> {
  const rng = hostRng(seed);
  const hash = createHash('sha256');
  let misses = 0;
  for (const causal of [true, false]) {
    const { p, q, k, v } = problem(rng, 300, 3, 4, 2, 64, causal);
    const dout = randomArray(rng, q.length);
    const got = await scope(async () => {
      const tq = tensor(q, [p.tokens, p.heads, p.headDim]);
      const tk = tensor(k, [p.tokens, p.kvHeads, p.headDim]);
      const tv = tensor(v, [p.tokens, p.kvHeads, p.headDim]);
      const options = { cuSeqlens: cuTensor(p), causal };
      const fwd = attention(tq, tk, tv, options);
      const g = attentionBackward(tensor(dout, [p.tokens, p.heads, p.headDim]), tq, tk, tv, fwd, options);
      const outputs = [fwd.out, fwd.lse, g.dq, g.dk, g.dv];
      for (const x of outputs) hash.update(Buffer.from(await x.toBytes()));
      return Promise.all(outputs.map((x) => x.toArray()));
    });
    const want = attentionReference(p, q, k, v);
    const grads = attentionBackwardReference(p, dout, q, k, v);
    const wanted = [want.out, want.lse, grads.dq, grads.dk, grads.dv];
    got.forEach((x, i) => (misses += mismatch(x, wanted[i], i < 2 ? tolerance.f32 : f32Backward)?.count ?? 0));
  }
  process.stdout.write(`digest ${hash.digest('hex')} misses ${misses}\n`);
}

function defineTests(): void {
  const seed = testSeed();
  t.comment(`seed ${seed}`);
  const rng = hostRng(seed);

  // [T, documents, H, Hkv, D]: T from 1 to ~200, head ratios 1, 2, 4, D in {1, 8, 64, 128} (the
  // run-time-sized loops and the fixed-size ones) and the demo presets' 16, 24 and 32 (fixed-size).
  const shapes: Array<[number, number, number, number, number]> = [
    [1, 1, 1, 1, 1],
    [3, 2, 2, 1, 8],
    [17, 3, 4, 1, 8],
    [65, 2, 4, 2, 64],
    [130, 3, 3, 3, 1],
    [201, 4, 4, 1, 64],
    [70, 2, 2, 1, 128],
    [150, 3, 4, 4, 24],
    [90, 2, 4, 2, 16],
    [75, 2, 2, 1, 32],
  ];

  t.test('forward matches the float64 reference (out and lse)', async (t) => {
    for (const [T, docs, H, Hkv, D] of shapes) {
      for (const causal of [true, false]) {
        const { p, q, k, v } = problem(rng, T, docs, H, Hkv, D, causal);
        const want = attentionReference(p, q, k, v);
        for (const dtype of ['f32', 'f64'] as const) {
          const got = await runForward(p, q, k, v, dtype);
          assertClose(t, got.out, want.out, tolerance[dtype], `${dtype} ${describe(p)} out`);
          assertClose(t, got.lse, want.lse, dtype === 'f64' ? lseTolerance : tolerance.f32, `${dtype} ${describe(p)} lse`);
        }
      }
    }
  });

  t.test('the scale attribute and an empty packed document', async (t) => {
    const { p, q, k, v } = problem(rng, 40, 3, 4, 2, 8, true);
    p.cuSeqlens = [0, 15, 15, 40];
    p.scale = 0.3 + rng.uniform();
    const want = attentionReference(p, q, k, v);
    const got = await runForward(p, q, k, v, 'f32', p.scale);
    assertClose(t, got.out, want.out, tolerance.f32, `scale ${p.scale} out`);
    assertClose(t, got.lse, want.lse, tolerance.f32, `scale ${p.scale} lse`);
  });

  t.test('bf16 inputs: f32 math over the rounded values', async (t) => {
    for (const [T, docs, H, Hkv, D] of [[65, 2, 4, 2, 64], [33, 3, 4, 4, 8]] as const) {
      const { p, q, k, v } = problem(rng, T, docs, H, Hkv, D, true);
      const got = await runForward(p, q, k, v, 'bf16');
      const want = attentionReference(p, got.q, got.k, got.v);
      assertClose(t, got.out, want.out, tolerance.bf16, `bf16 ${describe(p)} out`);
      assertClose(t, got.lse, want.lse, tolerance.f32, `bf16 ${describe(p)} lse`);
    }
  });

  t.test('documents never attend across boundaries', async (t) => {
    for (const causal of [true, false]) {
      const { p, q, k, v } = problem(rng, 150, 3, 4, 2, 8, causal);
      p.cuSeqlens = [0, 40, 110, 150];
      const before = await runForward(p, q, k, v, 'f32');
      // Perturb the middle document's keys and values only.
      const rowK = p.kvHeads * p.headDim;
      for (let i = 40 * rowK; i < 110 * rowK; i++) {
        k[i] += 1 + rng.normal();
        v[i] += 1 + rng.normal();
      }
      const after = await runForward(p, q, k, v, 'f32');
      const rowQ = p.heads * p.headDim;
      const same = (a: Float64Array, b: Float64Array, from: number, to: number) => a.slice(from, to).every((x, i) => x === b[from + i]);
      const others = same(before.out, after.out, 0, 40 * rowQ) && same(before.out, after.out, 110 * rowQ, 150 * rowQ);
      t.ok(others, `${causal ? 'causal' : 'full'}: other documents unchanged`);
      t.notOk(same(before.out, after.out, 40 * rowQ, 110 * rowQ), 'the perturbed document changed');
      assertClose(t, after.out, attentionReference(p, q, k, v).out, tolerance.f32, 'perturbed run still matches the reference');
    }
  });

  t.test('kvCacheWrite writes each sequence at its offset, in place', async (t) => {
    for (const dtype of ['f32', 'bf16', 'f64'] as const) {
      const [B, Hkv, maxTokens, D] = [3, 2, 12, 8];
      const cu = [0, 2, 3, 7];
      const offsets = [0, 11, 5];
      const cache = randomArray(rng, B * Hkv * maxTokens * D);
      const values = randomArray(rng, 7 * Hkv * D);
      const cacheT = tensor(cache, [B, Hkv, maxTokens, D], { dtype });
      const valuesT = tensor(values, [7, Hkv, D], { dtype });
      const want = Float64Array.from(await cacheT.toArray());
      const rounded = await valuesT.toArray();
      for (let b = 0; b < B; b++) {
        for (let t = cu[b]; t < cu[b + 1]; t++) {
          for (let g = 0; g < Hkv; g++) {
            for (let d = 0; d < D; d++) want[((b * Hkv + g) * maxTokens + offsets[b] + t - cu[b]) * D + d] = rounded[(t * Hkv + g) * D + d];
          }
        }
      }
      kvCacheWrite(cacheT, valuesT, tensor(Int32Array.from(cu), [4]), tensor(Int32Array.from(offsets), [3]));
      t.same(Array.from(await cacheT.toArray()), Array.from(want), `${dtype}: written rows match, the rest untouched`);
    }
  });

  t.test('cache layout: decoding matches the packed reference over the full prefix', async (t) => {
    for (const [H, Hkv, D, dtype] of [[4, 2, 8, 'f64'], [8, 2, 64, 'f32'], [3, 1, 8, 'f32']] as const) {
      const prefix = [0, 5, 70];
      const fresh = [3, 1, 2];
      const B = prefix.length;
      const maxTokens = 80;
      const cache = { k: randomArray(rng, B * Hkv * maxTokens * D), v: randomArray(rng, B * Hkv * maxTokens * D) };
      const fullQ: Float64Array[] = [];
      const fullK: Float64Array[] = [];
      const fullV: Float64Array[] = [];
      for (let b = 0; b < B; b++) {
        const n = prefix[b] + fresh[b];
        fullQ.push(randomArray(rng, n * H * D));
        fullK.push(randomArray(rng, n * Hkv * D));
        fullV.push(randomArray(rng, n * Hkv * D));
        // The prefix is already in the cache; slots past it hold stale garbage.
        for (let j = 0; j < prefix[b]; j++) {
          for (let g = 0; g < Hkv; g++) {
            for (let d = 0; d < D; d++) {
              cache.k[((b * Hkv + g) * maxTokens + j) * D + d] = fullK[b][(j * Hkv + g) * D + d];
              cache.v[((b * Hkv + g) * maxTokens + j) * D + d] = fullV[b][(j * Hkv + g) * D + d];
            }
          }
        }
      }
      const newRows = (full: Float64Array[], width: number) =>
        Float64Array.from(full.flatMap((x, b) => Array.from(x.slice(prefix[b] * width))));
      const T = fresh.reduce((a, b) => a + b, 0);
      const cu = [0, fresh[0], fresh[0] + fresh[1], T];
      const got = await scope(async () => {
        const kc = tensor(cache.k, [B, Hkv, maxTokens, D], { dtype });
        const vc = tensor(cache.v, [B, Hkv, maxTokens, D], { dtype });
        const cuT = tensor(Int32Array.from(cu), [B + 1]);
        const offsets = tensor(Int32Array.from(prefix), [B]);
        kvCacheWrite(kc, tensor(newRows(fullK, Hkv * D), [T, Hkv, D], { dtype }), cuT, offsets);
        kvCacheWrite(vc, tensor(newRows(fullV, Hkv * D), [T, Hkv, D], { dtype }), cuT, offsets);
        const kvLens = tensor(Int32Array.from(prefix.map((x, b) => x + fresh[b])), [B]);
        const r = attention(tensor(newRows(fullQ, H * D), [T, H, D], { dtype }), kc, vc, { cuSeqlens: cuT, qOffset: offsets, kvLens });
        return { out: await r.out.toArray(), lse: await r.lse.toArray() };
      });
      for (let b = 0; b < B; b++) {
        const n = prefix[b] + fresh[b];
        const p: AttentionProblem = { tokens: n, heads: H, kvHeads: Hkv, headDim: D, cuSeqlens: [0, n], causal: true, scale: 1 / Math.sqrt(D) };
        const want = attentionReference(p, fullQ[b], fullK[b], fullV[b]);
        const outRows = got.out.slice(cu[b] * H * D, cu[b + 1] * H * D);
        const what = `${dtype} H=${H} Hkv=${Hkv} D=${D} sequence ${b} (prefix ${prefix[b]})`;
        assertClose(t, outRows, want.out.slice(prefix[b] * H * D), tolerance[dtype], `${what} out`);
        for (let h = 0; h < H; h++) {
          const lseRows = got.lse.slice(h * T + cu[b], h * T + cu[b + 1]);
          const tol = dtype === 'f64' ? lseTolerance : tolerance.f32;
          assertClose(t, lseRows, want.lse.slice(h * n + prefix[b], h * n + n), tol, `${what} head ${h} lse`);
        }
      }
    }
  });

  t.test('cache layout: partial and empty key ranges, causal or not', async (t) => {
    const [B, H, Hkv, D, maxTokens] = [3, 4, 2, 8, 20];
    const cu = [0, 4, 5, 8];
    const T = 8;
    const layout = { maxTokens, qOffset: [6, 0, 15], kvLens: [8, 0, 20] };
    const q = randomArray(rng, T * H * D);
    const k = randomArray(rng, B * Hkv * maxTokens * D);
    const v = randomArray(rng, B * Hkv * maxTokens * D);
    for (const causal of [true, false]) {
      const p: AttentionProblem = { tokens: T, heads: H, kvHeads: Hkv, headDim: D, cuSeqlens: cu, causal, scale: 1 / Math.sqrt(D) };
      const want = attentionCacheReference(p, layout, q, k, v);
      const r = attention(tensor(q, [T, H, D]), tensor(k, [B, Hkv, maxTokens, D]), tensor(v, [B, Hkv, maxTokens, D]), {
        cuSeqlens: tensor(Int32Array.from(cu), [B + 1]),
        qOffset: tensor(Int32Array.from(layout.qOffset), [B]),
        kvLens: tensor(Int32Array.from(layout.kvLens), [B]),
        causal,
      });
      const out = await r.out.toArray();
      const lse = await r.lse.toArray();
      assertClose(t, out, want.out, tolerance.f32, `${causal ? 'causal' : 'full'} out (sequence 1 sees no key: out 0)`);
      const finite = (xs: ArrayLike<number>) => Array.from(xs).map((x) => (x === -Infinity ? 0 : x));
      t.ok(Array.from({ length: H }, (_, h) => lse[h * T + 4]).every((x) => x === -Infinity), 'a query without keys has lse -inf');
      assertClose(t, finite(lse), finite(want.lse), tolerance.f32, 'lse');
    }
  });

  t.test('backward matches finite differences (f64)', async (t) => {
    for (const causal of [true, false]) {
      const { p, q, k, v } = problem(rng, 9, 2, 4, 2, 3, causal);
      const w = randomArray(rng, q.length);
      const grads = await runBackward(p, w, q, k, v, 'f64');
      const loss = async (x: Record<string, Float64Array>) => project((await runForward(p, x.q, x.k, x.v, 'f64')).out, w);
      const result = await gradCheck({ q, k, v }, { q: grads.dq, k: grads.dk, v: grads.dv }, loss, rng);
      t.ok(result.worst.error < 1e-5, `${describe(p)}: ${result.checked} coordinates, worst ${JSON.stringify(result.worst)}`);
    }
  });

  t.test('backward matches the reference gradient', async (t) => {
    const sizes = [[1, 1, 2, 1, 8], [17, 3, 4, 1, 8], [65, 2, 4, 2, 64], [130, 3, 2, 2, 1], [70, 2, 2, 1, 128], [150, 3, 4, 4, 24], [90, 2, 4, 2, 16], [75, 2, 2, 1, 32]] as const;
    for (const [T, docs, H, Hkv, D] of sizes) {
      for (const causal of [true, false]) {
        const { p, q, k, v } = problem(rng, T, docs, H, Hkv, D, causal);
        const dout = randomArray(rng, q.length);
        const want = attentionBackwardReference(p, dout, q, k, v);
        for (const dtype of ['f64', 'f32'] as const) {
          const got = await runBackward(p, dout, q, k, v, dtype);
          const tol = dtype === 'f64' ? f64ViaLse : f32Backward;
          for (const name of ['dq', 'dk', 'dv'] as const) assertClose(t, got[name], want[name], tol, `${dtype} ${describe(p)} ${name}`);
        }
      }
    }
  });

  t.test('results do not depend on the thread count; the portable kernels match too', async (t) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('TAP')) env[key] = value;
    const runs = [
      { threads: 1, simd: '1' },
      { threads: 2, simd: '1' },
      { threads: 2, simd: '0' },
    ].map(({ threads, simd }) => {
      const child = spawnSync(process.execPath, [...process.execArgv, __filename], {
        env: { ...env, SEQTUNE_NUM_THREADS: String(threads), SEQTUNE_CPU_SIMD: simd, SEQTUNE_ATTENTION_DIGEST_SEED: String(seed) },
        encoding: 'utf8',
        timeout: 120_000,
      });
      const match = /^digest ([0-9a-f]+) misses (\d+)$/m.exec(child.stdout ?? '');
      const what = `${threads} thread(s), SEQTUNE_CPU_SIMD=${simd}`;
      t.ok(match, `${what}: child reported${match ? '' : `; stderr: ${child.stderr}`}`);
      t.equal(match?.[2], '0', `${what}: every value within tolerance of the reference`);
      return match?.[1];
    });
    t.equal(runs[0], runs[1], '1 and 2 threads: identical bytes');
  });

  t.test('invalid calls throw a SeqtuneError with a code', async (t) => {
    const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
    const f32 = (shape: number[]) => tensor(new Float32Array(size(shape)), shape);
    const f64 = (shape: number[]) => tensor(new Float64Array(size(shape)), shape);
    const i32 = (values: number[]) => tensor(Int32Array.from(values), [values.length]);
    const [q, k, v, cu] = [f32([5, 4, 8]), f32([5, 2, 8]), f32([5, 2, 8]), i32([0, 2, 5])];
    const cache = f32([2, 2, 10, 8]);
    const lse = f32([4, 5]);
    const decode = { cuSeqlens: cu, qOffset: i32([0, 0]) };
    const bad: Array<[string, () => unknown, string]> = [
      ['q not floating', () => attention(tensor(new Int32Array(160), [5, 4, 8]), k, v, { cuSeqlens: cu }), 'ERR_DTYPE'],
      ['k dtype differs', () => attention(q, f64([5, 2, 8]), v, { cuSeqlens: cu }), 'ERR_DTYPE'],
      ['q rank 2', () => attention(f32([5, 32]), k, v, { cuSeqlens: cu }), 'ERR_SHAPE'],
      ['heads not a multiple', () => attention(f32([5, 3, 8]), k, v, { cuSeqlens: cu }), 'ERR_SHAPE'],
      ['head dims differ', () => attention(f32([5, 4, 4]), k, v, { cuSeqlens: cu }), 'ERR_SHAPE'],
      ['k and v shapes differ', () => attention(q, k, f32([5, 1, 8]), { cuSeqlens: cu }), 'ERR_SHAPE'],
      ['packed k rows != T', () => attention(q, f32([6, 2, 8]), f32([6, 2, 8]), { cuSeqlens: cu }), 'ERR_SHAPE'],
      ['cuSeqlens f32', () => attention(q, k, v, { cuSeqlens: f32([3]) }), 'ERR_DTYPE'],
      ['cuSeqlens rank 2', () => attention(q, k, v, { cuSeqlens: tensor(Int32Array.from([0, 5]), [1, 2]) }), 'ERR_SHAPE'],
      ['cuSeqlens empty', () => attention(q, k, v, { cuSeqlens: i32([]) }), 'ERR_SHAPE'],
      ['missing cuSeqlens', () => native().runOp('attention', [q.handle, k.handle, v.handle], {}), 'ERR_ARGUMENT'],
      ['non-finite scale', () => attention(q, k, v, { cuSeqlens: cu, scale: NaN }), 'ERR_ARGUMENT'],
      ['qOffset without kvLens', () => attention(q, cache, cache, decode), 'ERR_ARGUMENT'],
      ['cache layout with rank-3 k', () => attention(q, k, v, { ...decode, kvLens: i32([1, 1]) }), 'ERR_SHAPE'],
      ['cache batch != B', () => attention(q, f32([3, 2, 10, 8]), f32([3, 2, 10, 8]), { ...decode, kvLens: i32([1, 1]) }), 'ERR_SHAPE'],
      ['qOffset length', () => attention(q, cache, cache, { ...decode, qOffset: i32([0]), kvLens: i32([1, 1]) }), 'ERR_SHAPE'],
      ['kvLens dtype', () => attention(q, cache, cache, { ...decode, kvLens: f32([2]) }), 'ERR_DTYPE'],
      ['backward lse dtype', () => attentionBackward(q, q, k, v, { out: q, lse: f64([4, 5]) }, { cuSeqlens: cu }), 'ERR_DTYPE'],
      ['backward lse shape', () => attentionBackward(q, q, k, v, { out: q, lse: f32([5, 4]) }, { cuSeqlens: cu }), 'ERR_SHAPE'],
      ['backward dout shape', () => attentionBackward(f32([5, 4, 4]), q, k, v, { out: q, lse }, { cuSeqlens: cu }), 'ERR_SHAPE'],
      ['backward cache layout', () => attentionBackward(q, q, cache, cache, { out: q, lse }, { cuSeqlens: cu }), 'ERR_SHAPE'],
      ['kvCacheWrite dtype', () => kvCacheWrite(cache, f64([5, 2, 8]), cu, i32([0, 0])), 'ERR_DTYPE'],
      ['kvCacheWrite heads', () => kvCacheWrite(cache, f32([5, 1, 8]), cu, i32([0, 0])), 'ERR_SHAPE'],
      ['kvCacheWrite offsets length', () => kvCacheWrite(cache, k, cu, i32([0, 0, 0])), 'ERR_SHAPE'],
    ];
    for (const [what, call, code] of bad) t.throws(call, { name: 'SeqtuneError', code }, `${what}: ${code}`);
  });

  t.test('invalid index contents fail the read-back with ERR_INDEX; the process carries on', async (t) => {
    const { p, q, k, v } = problem(rng, 12, 2, 2, 1, 8, true);
    const shapeQ = [12, 2, 8];
    const shapeK = [12, 1, 8];
    const i32 = (values: number[]) => tensor(Int32Array.from(values), [values.length]);
    const packed = (cu: number[]) => attention(tensor(q, shapeQ), tensor(k, shapeK), tensor(v, shapeK), { cuSeqlens: i32(cu) });
    const cache = tensor(randomArray(rng, 2 * 10 * 8), [2, 1, 10, 8]);
    const decode = (qOffset: number[], kvLens: number[]) =>
      attention(tensor(q, shapeQ), cache, cache, { cuSeqlens: i32([0, 5, 12]), qOffset: i32(qOffset), kvLens: i32(kvLens) });
    const failing: Array<[string, () => Tensor]> = [
      ['cuSeqlens not starting at 0', () => packed([1, 5, 12]).out],
      ['cuSeqlens decreasing (a huge start)', () => packed([0, 2_000_000_000, 12]).out],
      ['cuSeqlens not ending at T', () => packed([0, 5, 11]).lse],
      ['negative qOffset', () => decode([-1, 0], [5, 7]).out],
      ['kvLens past the cache', () => decode([0, 0], [5, 11]).out],
      ['negative kvLens', () => decode([0, 0], [-3, 7]).lse],
      ['backward cuSeqlens', () => {
        const fwd = attention(tensor(q, shapeQ), tensor(k, shapeK), tensor(v, shapeK), { cuSeqlens: i32(p.cuSeqlens as number[]) });
        const [tq, tk, tv] = [tensor(q, shapeQ), tensor(k, shapeK), tensor(v, shapeK)];
        return attentionBackward(tq, tq, tk, tv, fwd, { cuSeqlens: i32([0, 7, 6, 12]) }).dk;
      }],
      ['kvCacheWrite past the end', () => {
        kvCacheWrite(cache, tensor(k, shapeK), i32([0, 5, 12]), i32([6, 0]));
        return cache;
      }],
      ['kvCacheWrite negative offset', () => {
        const fresh = tensor(randomArray(rng, 2 * 10 * 8), [2, 1, 10, 8]);
        kvCacheWrite(fresh, tensor(k, shapeK), i32([0, 5, 12]), i32([0, -1]));
        return fresh;
      }],
    ];
    for (const [what, make] of failing) {
      await t.rejects(make().toArray(), { name: 'SeqtuneError', code: 'ERR_INDEX' }, what);
    }
    await t.rejects(sync(), { code: 'ERR_INDEX' }, 'sync reports the first failure');
    const again = await runForward(p, q, k, v, 'f32');
    assertClose(t, again.out, attentionReference(p, q, k, v).out, tolerance.f32, 'a valid call afterwards still works');
  });

  // The CPU backend is the oracle for the CUDA ops' index errors: they replay its checks on host
  // copies (native/ops/attention.cpp), so its messages are what both backends report.
  t.test('attentionBackward checks cuSeqlens like the forward and names the bad entry', async (t) => {
    const { p, q, k, v } = problem(rng, 12, 2, 2, 1, 8, true);
    const [tq, tk, tv] = [tensor(q, [12, 2, 8]), tensor(k, [12, 1, 8]), tensor(v, [12, 1, 8])];
    const fwd = attention(tq, tk, tv, { cuSeqlens: cuTensor(p) });
    const i32 = (values: number[]) => tensor(Int32Array.from(values), [values.length]);
    // The whole message (tap matches a string as a substring).
    const exactly = (text: string) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
    const bad: Array<[number[], string]> = [
      [[1, 5, 12], 'cuSeqlens[0] must be 0, got 1'],
      [[0, 7, 6, 12], 'cuSeqlens must not decrease, got 7 then 6 at 1'],
      [[0, 5, 2_000_000_000], 'cuSeqlens must end at T = 12, got 2000000000'],
    ];
    for (const [cu, detail] of bad) {
      const g = attentionBackward(tq, tq, tk, tv, fwd, { cuSeqlens: i32(cu) });
      const message = `attentionBackward: ${detail}`;
      await t.rejects(g.dq.toArray(), { name: 'SeqtuneError', code: 'ERR_INDEX', message: exactly(message) }, `[${cu}]: ${message}`);
      await t.rejects(g.dv.toArray(), { code: 'ERR_INDEX', message: exactly(message) }, `[${cu}]: every gradient carries it`);
      const f = attention(tq, tk, tv, { cuSeqlens: i32(cu) });
      const forward = `attention: ${detail}`;
      await t.rejects(f.out.toArray(), { code: 'ERR_INDEX', message: exactly(forward) }, `[${cu}]: the forward's own message`);
    }
    await t.rejects(sync(), { code: 'ERR_INDEX' }, 'sync reports the first failure');
    const good = attentionBackward(tq, tq, tk, tv, fwd, { cuSeqlens: cuTensor(p) });
    t.equal((await good.dk.toArray()).length, 12 * 8, 'a valid backward afterwards still works');
  });
}
