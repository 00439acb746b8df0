import * as path from 'node:path';
import t from 'tap';
import { buildHostCheck, runHostCheck as run } from './host-check';

// The Hopper attention forward's index math (kernels/flash_attention_hopper_layout.h) checked on
// the host, no GPU needed: attention_hopper_layout.cpp runs packed batches (empty, one-token and
// block-straddling documents; grouped-query heads; causal and full; head dims 64 and 128) through
// an emulation of the kernel's index path — TMA boxes, wgmma descriptors, the P register fragments,
// the stage ring, the stored rows — against a float64 attention, and each deliberately broken
// variant must be caught.
const built = buildHostCheck('attention_hopper_layout', [path.join(__dirname, 'attention_hopper_layout.cpp')]);

t.test('Hopper attention layout: boxes, descriptors, fragments and the emulated forward', { skip: built.reason ?? false }, async (t) => {
  const result = run(built.binary!);
  t.same(result.failed, [], 'no check failed');
  t.equal(result.passed.filter((l) => l.includes('regions and boxes')).length, 2, 'layout of both head dims');
  const emulated = result.passed.filter((l) => l.includes('emulated forward'));
  t.equal(emulated.length, 8, 'eight emulated batches');
  for (const kind of ['D 64', 'D 128', 'causal', 'full', '4/1', '[300,0,129,64,1]']) {
    t.ok(emulated.some((l) => l.includes(kind)), `emulated: ${kind}`);
  }
  t.equal(result.status, 0, 'exit 0');
});

t.test('the checks catch deliberately broken variants', { skip: built.reason ?? false }, async (t) => {
  const faults: Array<[string, string]> = [
    ['swizzle', 'emulated forward D 64'],
    ['qbox', 'emulated forward D 128'],
    ['kstep', 'emulated forward D 64'],
    ['vlbo', 'emulated forward D 128'],
    ['mask', 'causal'],
    ['stage', 'emulated forward D 64'],
  ];
  for (const [fault, symptom] of faults) {
    const result = run(built.binary!, fault);
    t.equal(result.status, 1, `${fault}: exit 1`);
    t.ok(result.failed.some((l) => l.includes(symptom)), `${fault}: reports "${symptom}"`);
  }
});
