import * as path from 'node:path';
import t from 'tap';
import { buildHostCheck, runHostCheck as run } from './host-check';

// The Hopper attention kernels' index math (kernels/hopper/flash_attention_hopper_layout.h) checked on
// the host, no GPU needed: attention_hopper_layout*.cpp run packed batches (empty, one-token and
// block-straddling documents; grouped-query heads; causal and full; head dims 64 and 128) through
// emulations of the forward's and the backward's index paths — TMA boxes, wgmma descriptors,
// register fragments, the stage ring, the dS tile of dQ, the stored rows — against a float64
// attention and its gradients, and each deliberately broken variant must be caught.
const built = buildHostCheck(
  'attention_hopper_layout',
  ['attention_hopper_layout.cpp', 'attention_hopper_layout_bwd.cpp'].map((f) => path.join(__dirname, f)),
);

t.test('Hopper attention layout: boxes, descriptors, fragments, the emulated forward and backward', { skip: built.reason ?? false }, async (t) => {
  const result = run(built.binary!);
  t.same(result.failed, [], 'no check failed');
  t.equal(result.passed.filter((l) => l.includes('regions and boxes')).length, 2, 'layout of both head dims');
  for (const pass of ['forward', 'backward']) {
    const emulated = result.passed.filter((l) => l.includes(`emulated ${pass}`));
    t.equal(emulated.length, 8, `eight emulated ${pass} batches`);
    for (const kind of ['D 64', 'D 128', 'causal', 'full', '4/1', '[300,0,129,64,1]']) {
      t.ok(emulated.some((l) => l.includes(kind)), `emulated ${pass}: ${kind}`);
    }
  }
  t.equal(result.status, 0, 'exit 0');
});

t.test('the checks catch deliberately broken variants', { skip: built.reason ?? false }, async (t) => {
  // Each fault breaks both kernels (vlbo only at D = 128, where V, dO and Q tiles span two boxes),
  // except dstile: the backward's dS tile, read only by its dQ product.
  const faults: Array<[string, string, string[]]> = [
    ['swizzle', 'D 64', ['forward', 'backward']],
    ['qbox', 'D 128', ['forward', 'backward']],
    ['kstep', 'D 64', ['forward', 'backward']],
    ['vlbo', 'D 128', ['forward', 'backward']],
    ['mask', 'causal', ['forward', 'backward']],
    ['stage', 'D 64', ['forward', 'backward']],
    ['dstile', 'D 64', ['backward']],
  ];
  for (const [fault, symptom, passes] of faults) {
    const result = run(built.binary!, fault);
    t.equal(result.status, 1, `${fault}: exit 1`);
    for (const pass of passes) {
      t.ok(
        result.failed.some((l) => l.includes(`emulated ${pass}`) && l.includes(symptom)),
        `${fault}: the ${pass} reports "${symptom}"`,
      );
    }
  }
  const dstile = run(built.binary!, 'dstile');
  t.ok(dstile.failed.every((l) => l.includes('emulated backward') && l.includes(': dq[')), 'dstile: only dq is wrong');
});
