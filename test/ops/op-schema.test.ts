import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { isSeqtuneError } from '../../lib/errors';
import { native, packageRoot, type Attrs } from '../../lib/native';
import { attention, linearCrossEntropyBackward, linearCrossEntropy, matmul, matmulBackward, opSchemas } from '../../lib/ops';
import { tensor } from '../../lib/tensor';
import { assertClose } from '../helpers/compare';
import { hostRng, randomArray, testSeed } from '../helpers/random';

// Each op is declared once (native/ops/<op>.cpp): inputs, attributes with types and defaults,
// outputs in order. These tests hold lib/ops.ts to that declaration and check the native side
// rejects what it does not declare.

const rng = hostRng(testSeed(t));
const x = (shape: number[]) => tensor(randomArray(rng, shape.reduce((a, b) => a * b, 1)), shape);

function rejects(t: Test, op: string, inputs: Array<ReturnType<typeof x> | null>, attrs: Attrs, pattern: RegExp, what: string) {
  try {
    native().runOp(op, inputs.map((i) => (i ? i.handle : null)), attrs);
    t.fail(`${what}: ran without an error`);
  } catch (error) {
    t.ok(isSeqtuneError(error, 'ERR_ARGUMENT'), `${what}: ERR_ARGUMENT (${(error as Error).message})`);
    t.match((error as Error).message, pattern, `${what}: the message names the op and the key`);
  }
}

t.test('lib/ops.ts and lib/tensor.ts call exactly the registered ops', async (t) => {
  const called = new Set<string>();
  for (const file of ['lib/ops.ts', 'lib/tensor.ts']) {
    const source = fs.readFileSync(path.join(packageRoot, file), 'utf8');
    for (const m of source.matchAll(/\b(?:run|runNamed|runOp|random)\('(\w+)'/g)) called.add(m[1]);
  }
  const registered = [...opSchemas().keys()].sort();
  t.same([...called].sort(), registered, 'the same names on both sides');
});

t.test('every schema is well formed', async (t) => {
  for (const [name, schema] of opSchemas()) {
    const attrs = new Map(schema.attrs.map((a) => [a.name, a]));
    t.equal(attrs.size, schema.attrs.length, `${name}: attribute names are unique`);
    t.equal(new Set(schema.outputs.map((o) => o.name)).size, schema.outputs.length, `${name}: output names are unique`);
    for (const a of schema.attrs) {
      if (a.default === undefined) continue;
      const type = Array.isArray(a.default) ? 'array of numbers' : typeof a.default;
      const expected = a.type === 'integer' ? 'number' : a.type;
      t.equal(type, expected, `${name}.${a.name}: the default is a ${a.type}`);
      t.notOk(a.required, `${name}.${a.name}: an attribute with a default is not required`);
    }
    for (const o of schema.outputs.filter((o) => o.when)) {
      const flag = attrs.get(o.when!);
      t.ok(flag && flag.type === 'boolean' && flag.default !== undefined, `${name}.${o.name}: present when boolean ${o.when}`);
    }
  }
});

t.test('a misspelt or mistyped attribute is rejected, naming the op and the key', async (t) => {
  const a = x([3, 4]);
  const b = x([4, 2]);
  rejects(t, 'matmul', [a, b], { transb: true }, /matmul: unknown attribute 'transb'/, 'misspelt transB');
  rejects(t, 'matmul', [a, b], { transB: 1 }, /matmul: attribute 'transB' must be a boolean/, 'transB as a number');
  rejects(t, 'matmul', [a, b], { alpha: true }, /matmul: attribute 'alpha' must be a number/, 'alpha as a boolean');
  rejects(t, 'dropout', [a], { p: 0.1, seed: 1.5, offset: 0 }, /dropout: attribute 'seed' must be an integer/, 'fractional seed');
  rejects(t, 'swiglu', [a, a], { alpha: 1 }, /swiglu: unknown attribute 'alpha' \(swiglu takes none\)/, 'an op without attributes');
  rejects(t, 'dropout', [a], { p: 0.1, seed: 1 }, /dropout: missing attribute 'offset'/, 'a required attribute left out');
  // The same key spelt right runs, with the schema's defaults for what is left out.
  const c = native().runOp('matmul', [a.handle, x([2, 4]).handle], { transB: true });
  t.equal(c.length, 1, 'transB spelt right runs');
});

t.test('outputs are named from the schema, the optional ones only when computed', async (t) => {
  const a = x([3, 4]);
  const b = x([4, 2]);
  const bias = x([2]);
  const dc = matmul(a, b, { bias });
  const all = matmulBackward(dc, a, b, { bias });
  t.same(Object.keys(all).sort(), ['da', 'db', 'dbias'], 'matmulBackward: all three by default with a bias');
  const onlyB = matmulBackward(dc, a, b, { bias, needA: false, needBias: false });
  t.same(Object.keys(onlyB), ['db'], 'matmulBackward: needA and needBias off leave db alone');
  assertClose(t, await onlyB.db!.toArray(), await all.db!.toArray(), { atol: 0, rtol: 0 }, 'db is the same tensor either way');

  const h = x([5, 4]);
  const w = x([7, 4]);
  const labels = tensor(Int32Array.from({ length: 5 }, () => Math.floor(rng.uniform() * 7)), [5]);
  const fwd = linearCrossEntropy(h, w, labels);
  t.same(Object.keys(linearCrossEntropyBackward(h, w, labels, fwd)).sort(), ['dh', 'dweight'], 'dweight by default');
  t.same(Object.keys(linearCrossEntropyBackward(h, w, labels, fwd, { needWeight: false })), ['dh'], 'needWeight off');

  const q = x([3, 2, 4]);
  const cu = tensor(Int32Array.from([0, 3]), [2]);
  const { out, lse } = attention(q, x([3, 1, 4]), x([3, 1, 4]), { cuSeqlens: cu });
  t.same([out.shape, lse.shape], [[3, 2, 4], [2, 3]], 'attention: out then lse, in the declared order');
});
