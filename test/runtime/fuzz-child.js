// Child process for native-fuzz.test.ts: calls every registered op with random garbage (wrong
// ranks, dtypes, shapes, disposed tensors, odd attributes, hostile index values) straight through
// the binding, then reads back every output. Each call must either work or throw/reject with a
// coded error; the parent checks that this process exits normally.
'use strict';
const path = require('node:path');
const root = path.resolve(__dirname, '..', '..');
const m = process.env.SEQTUNE_ADDON ? require(process.env.SEQTUNE_ADDON) : require('node-gyp-build')(root);

const seed = Number(process.argv[2] || 1);
const iterations = Number(process.argv[3] || 2000);
let state = seed >>> 0;
function rand() {
  state = (state + 0x9e3779b9) >>> 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(rand() * list.length)];
const dtypes = ['f32', 'f64', 'bf16', 'f16', 'i32'];
const dims = [0, 1, 2, 3, 4, 5, 7, 8, 16];

function randomTensor() {
  const rank = Math.floor(rand() * 5);
  const shape = Array.from({ length: rank }, () => pick(dims));
  const dtype = pick(dtypes);
  const n = shape.reduce((a, b) => a * b, 1);
  let data = null;
  if (rand() < 0.8) {
    if (dtype === 'i32') data = Int32Array.from({ length: n }, () => pick([-100, -1, 0, 1, 2, 3, 7, 2 ** 31 - 1, -(2 ** 31)]));
    else if (dtype === 'f64') data = Float64Array.from({ length: n }, () => pick([0, 1, -1, NaN, Infinity, 1e300, rand()]));
    else if (dtype === 'f32') data = Float32Array.from({ length: n }, () => pick([0, 1, -1, NaN, Infinity, rand()]));
    else data = null;
  }
  const t = m.fromHost('cpu', dtype, shape, data);
  if (rand() < 0.05) t.dispose();
  return t;
}

function randomAttrValue() {
  return pick([0, 1, -1, 0.5, 2, 1e9, -1e9, NaN, Infinity, true, false, 'mean', 'sum', 'llama3', 'f32', 'bogus', [], [1, 2], [-1], [1e12]]);
}

const ops = m.listOps().map((o) => o.name);
const attrNames = ['alpha', 'transA', 'transB', 'eps', 'theta', 'p', 'seed', 'offset', 'count', 'lr', 'beta1', 'beta2', 'step',
  'weightDecay', 'scale', 'causal', 'ignoreIndex', 'reduction', 'chunkSize', 'vocabSize', 'dtype', 'shape', 'value', 'needA',
  'needB', 'needBias', 'needWeight', 'needInput', 'dropoutP', 'gradScale', 'maxGradNorm', 'maxNorm', 'scalingType', 'factor',
  'inverse', 'mean', 'std', 'low', 'high', 'device'];

let thrown = 0;
let ran = 0;
const pending = [];
for (let i = 0; i < iterations; i++) {
  const op = pick(ops);
  const inputs = Array.from({ length: Math.floor(rand() * 7) }, () => (rand() < 0.1 ? null : randomTensor()));
  const attrs = {};
  for (let a = 0; a < 4; a++) attrs[pick(attrNames)] = randomAttrValue();
  if (rand() < 0.5) attrs.shape = Array.from({ length: Math.floor(rand() * 3) }, () => pick(dims));
  try {
    const outputs = m.runOp(op, inputs, attrs);
    ran++;
    for (const out of outputs) pending.push(out.toHost().catch((e) => { if (!e.code) throw e; }));
  } catch (error) {
    if (!error.code) throw new Error(`${op} threw an uncoded error: ${error.message}`);
    thrown++;
  }
}
Promise.all(pending).then(() => m.sync('cpu').catch(() => {})).then(() => {
  console.log(JSON.stringify({ ran, thrown }));
});
