import t from 'tap';
import { add, addInplace, cast, mul, scale, sum } from '../../lib/ops';
import { Rng } from '../../lib/rng';
import { randn, tensor, zeros } from '../../lib/tensor';
import { assertClose, tolerance } from '../helpers/compare';
import { hostRng, randomArray, testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

for (const n of [1, 3, 17, 65, 4099]) {
  t.test(`add/mul/scale/addInplace/sum over ${n} elements`, async (t) => {
    const a = randomArray(rng, n);
    const b = randomArray(rng, n);
    const alpha = rng.normal();
    for (const dtype of ['f32', 'f64'] as const) {
      const ta = tensor(a, [n], { dtype });
      const tb = tensor(b, [n], { dtype });
      const tol = tolerance[dtype];
      assertClose(t, await add(ta, tb, alpha).toArray(), a.map((x, i) => x + alpha * b[i]), tol, `${dtype} add`);
      assertClose(t, await mul(ta, tb).toArray(), a.map((x, i) => x * b[i]), tol, `${dtype} mul`);
      assertClose(t, await scale(ta, alpha).toArray(), a.map((x) => x * alpha), tol, `${dtype} scale`);
      const acc = tensor(a, [n], { dtype });
      addInplace(acc, tb, alpha);
      assertClose(t, await acc.toArray(), a.map((x, i) => x + alpha * b[i]), tol, `${dtype} addInplace`);
      const want = a.reduce((s, x) => s + x, 0);
      assertClose(t, [await sum(ta).item()], [want], { atol: tol.atol * Math.sqrt(n), rtol: tol.rtol }, `${dtype} sum`);
    }
  });
}

t.test('cast rounds to bf16 and f16 like torch (round to nearest even)', async (t) => {
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1+2^-7: ties go to even (1).
  const values = [1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 65504, 1e-8, 3.14159];
  const bf16 = await cast(tensor(values, [values.length]), 'bf16').toArray();
  t.same(Array.from(bf16.slice(0, 4)), [1, 1, 1 + 2 ** -6, -2.5]);
  const f16 = await cast(tensor(values, [values.length]), 'f16').toArray();
  t.equal(f16[4], 65504, 'f16 max is exact');
  t.ok(Math.abs(f16[6] - 3.140625) < 1e-7, 'f16 rounds pi to 3.140625');
  const ints = await cast(tensor([1.9, -1.9, 7], [3]), 'i32').toArray();
  t.same(Array.from(ints), [1, -1, 7], 'casting to i32 truncates toward zero');
});

t.test('random draws are deterministic for a seed and offset', async (t) => {
  const a = await randn([1000], { rng: new Rng(seed & 0xffff) }).toArray();
  const b = await randn([1000], { rng: new Rng(seed & 0xffff) }).toArray();
  t.same(Array.from(a), Array.from(b));
  const mean = a.reduce((s, x) => s + x, 0) / a.length;
  const variance = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
  t.ok(Math.abs(mean) < 0.15 && Math.abs(variance - 1) < 0.2, `normal moments: mean ${mean}, variance ${variance}`);
  const rngState = new Rng(5);
  rngState.next();
  const restored = Rng.from(rngState.state());
  t.same(Array.from(await randn([8], { rng: rngState }).toArray()), Array.from(await randn([8], { rng: restored }).toArray()));
});

t.test('zeros', async (t) => {
  t.same(Array.from(await zeros([2, 2], { dtype: 'bf16' }).toArray()), [0, 0, 0, 0]);
});
