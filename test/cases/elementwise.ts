import { add, addInplace, cast, mul, scale, sum } from '../../lib/ops';
import { Rng } from '../../lib/rng';
import { randn, tensor } from '../../lib/tensor';
import type { CaseFactory } from '../helpers/op-case';
import { randomArray } from '../helpers/random';

export const cases: CaseFactory = (rng) => {
  const out = [];
  for (const n of [1, 17, 4099]) {
    const a = randomArray(rng, n);
    const b = randomArray(rng, n);
    const alpha = rng.normal();
    out.push(
      { op: 'add', name: `add n=${n}`, run: (device: string, dtype: 'f32') => [add(tensor(a, [n], { dtype, device }), tensor(b, [n], { dtype, device }), alpha)] },
      { op: 'mul', name: `mul n=${n}`, run: (device: string, dtype: 'f32') => [mul(tensor(a, [n], { dtype, device }), tensor(b, [n], { dtype, device }))] },
      { op: 'scale', name: `scale n=${n}`, run: (device: string, dtype: 'f32') => [scale(tensor(a, [n], { dtype, device }), alpha)] },
      {
        op: 'addInplace',
        name: `addInplace n=${n}`,
        run: (device: string, dtype: 'f32') => {
          const x = tensor(a, [n], { dtype, device });
          addInplace(x, tensor(b, [n], { dtype, device }), alpha);
          return [x];
        },
      },
      { op: 'sum', name: `sum n=${n}`, run: (device: string, dtype: 'f32') => [sum(tensor(a, [n], { dtype, device }))], tolerance: { bf16: { atol: 0.05 * Math.sqrt(n), rtol: 2e-2 } } },
      { op: 'cast', name: `cast f32->bf16 n=${n}`, dtypes: ['f32' as const], run: (device: string) => [cast(tensor(a, [n], { device }), 'bf16')] },
    );
  }
  const seed = rng.int(1 << 30);
  out.push({
    op: 'randomNormal',
    name: 'randomNormal 3x1000 (identical streams)',
    dtypes: ['f32' as const],
    run: (device: string) => [randn([3, 1000], { rng: new Rng(seed), device })],
    tolerance: { f32: { atol: 1e-5, rtol: 1e-5 } },
  });
  return out;
};
