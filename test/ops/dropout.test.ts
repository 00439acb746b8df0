import t from 'tap';
import { dropout, dropoutBackward, DropoutOptions } from '../../lib/ops';
import { Rng } from '../../lib/rng';
import { DType, full, tensor } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { hostRng, randomArray, testSeed } from '../helpers/random';
import { dropoutMaskRef, dropoutRef, philox4x32 } from '../reference/dropout';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

const read = async (x: { toArray(): Promise<ArrayLike<number>> }) => Float64Array.from(await x.toArray());
const keptOf = (values: ArrayLike<number>) => Array.from(values, (v) => v !== 0);
const bytes = async (x: { toBytes(): Promise<ArrayBuffer> }) => Buffer.from(await x.toBytes());

t.test('the reference Philox-4x32-10 matches the Random123 known-answer vectors', async (t) => {
  const hex = (words: number[]) => words.map((w) => w.toString(16).padStart(8, '0')).join(' ');
  t.equal(hex(philox4x32([0, 0, 0, 0], [0, 0])), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
  const ones = 0xffffffff;
  t.equal(hex(philox4x32([ones, ones, ones, ones], [ones, ones])), '408f276d 41c83b0e a20bc7c6 6d5451fd');
  t.equal(
    hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    'd16cfe09 94fdcceb 5001e420 24126ea1',
  );
});

for (const shape of [[1], [3], [17], [65, 65], [4099]]) {
  const n = shape.reduce((a, b) => a * b, 1);
  for (const dtype of ['f32', 'f64', 'bf16'] as DType[]) {
    t.test(`dropout ${dtype} [${shape}]`, async (t) => {
      const tx = tensor(randomArray(rng, n), shape, { dtype });
      const tdy = tensor(randomArray(rng, n), shape, { dtype });
      const [x, dy] = await Promise.all([tx, tdy].map(read));
      for (const p of [0.1, 0.5, 0.93]) {
        const options = { p, ...new Rng(rng.int(2 ** 31), rng.int(1000)).next() };
        const y = dropout(tx, options);
        t.equal(y.dtype, dtype);
        const got = await y.toArray();
        t.same(keptOf(got), dropoutMaskRef(n, p, options.seed, options.offset), `p=${p}: mask is Philox(seed, offset, i) > p`);
        assertClose(t, got, dropoutRef(x, p, options.seed, options.offset), tolerance[dtype], `p=${p}: kept values scaled by 1/(1-p)`);
        const dx = await dropoutBackward(tdy, options).toArray();
        t.same(keptOf(dx), keptOf(got), `p=${p}: backward mask equals forward mask`);
        assertClose(t, dx, dropoutRef(dy, p, options.seed, options.offset), tolerance[dtype], `p=${p}: backward values`);
      }
      const same = dropout(tx, { p: 0, seed: 1, offset: 2 });
      t.same(await bytes(same), await bytes(tx), 'p = 0 is an exact copy');
    });
  }
}

t.test('dropout is a pure function of (seed, offset), including their high 32 bits', async (t) => {
  const n = 3000;
  const x = full([n], 1);
  const base: DropoutOptions = { p: 0.5, seed: 2 ** 40 + rng.int(2 ** 30), offset: 2 ** 33 + rng.int(1000) };
  const first = await bytes(dropout(x, base));
  t.same(await bytes(dropout(x, base)), first, 'the same draw gives the same mask');
  t.same(keptOf(await dropout(x, base).toArray()), dropoutMaskRef(n, base.p, base.seed, base.offset), 'matches the reference');
  t.notSame(await bytes(dropout(x, { ...base, offset: base.offset + 1 })), first, 'the next offset gives another mask');
  t.notSame(await bytes(dropout(x, { ...base, seed: base.seed + 1 })), first, 'another seed gives another mask');
  t.notSame(await bytes(dropout(x, { ...base, offset: base.offset + 2 ** 32 })), first, 'the high word of offset counts');
});

t.test('keep rate is 1 - p and the expected value is preserved', async (t) => {
  const n = 200000;
  const x = full([n], 1);
  for (const p of [0.05, 0.3, 0.5, 0.9]) {
    const y = await read(dropout(x, { p, seed: rng.int(2 ** 31), offset: 0 }));
    const kept = y.reduce((c, v) => c + (v !== 0 ? 1 : 0), 0) / n;
    const sigma = Math.sqrt((p * (1 - p)) / n);
    t.ok(Math.abs(kept - (1 - p)) < 5 * sigma, `p=${p}: kept ${kept}, expected ${1 - p} ± ${5 * sigma}`);
    const mean = y.reduce((s, v) => s + v, 0) / n;
    t.ok(Math.abs(mean - 1) < (5 * sigma) / (1 - p), `p=${p}: mean ${mean} ≈ 1`);
  }
});

t.test('dropout rejects bad arguments', async (t) => {
  const x = tensor(randomArray(rng, 4), [4], { dtype: 'f32' });
  const throwsCode = (fn: () => unknown, code: string, message: RegExp) => t.throws(fn, { code, message });
  throwsCode(() => dropout(x, { p: 1, seed: 1, offset: 0 }), 'ERR_ARGUMENT', /dropout: p must be in \[0, 1\), got 1/);
  throwsCode(() => dropout(x, { p: -0.1, seed: 1, offset: 0 }), 'ERR_ARGUMENT', /p must be in/);
  throwsCode(() => dropoutBackward(x, { p: NaN, seed: 1, offset: 0 }), 'ERR_ARGUMENT', /p must be in/);
  throwsCode(() => dropout(x, { p: 0.5, seed: -1, offset: 0 }), 'ERR_ARGUMENT', /seed must be a non-negative integer/);
  throwsCode(() => dropout(x, { p: 0.5, seed: 1.5, offset: 0 }), 'ERR_ARGUMENT', /seed/);
  throwsCode(() => dropout(x, { p: 0.5, seed: 1, offset: -3 }), 'ERR_ARGUMENT', /offset must be a non-negative integer/);
  throwsCode(() => dropout(x, { p: 0.5, seed: 1 } as DropoutOptions), 'ERR_ARGUMENT', /missing attribute 'offset'/);
  throwsCode(() => dropout(tensor(new Int32Array(4), [4]), { p: 0.5, seed: 1, offset: 0 }), 'ERR_DTYPE', /x must be a floating-point/);
});
