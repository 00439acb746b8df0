import * as path from 'node:path';
import t from 'tap';
import { buildHostCheck, runHostCheck as run } from './host-check';

// The Hopper GEMM's index math (kernels/hopper/gemm_hopper_layout.h) checked on the host, no GPU needed:
// gemm_hopper_layout.cpp checks the header against the documents' definitions (Swizzle<3,4,3>, the
// wgmma descriptor and canonical layouts, TMA's tiled boxes, the wgmma accumulator fragment) and
// runs whole GEMMs (some with a second K segment, as LoRA uses it) through an emulation of the
// kernel's index path against a float64 product. This
// file compares what it prints (swizzled addresses, descriptors, tile orders) with a reference
// written here, and checks that deliberately broken variants are caught.

// CUTLASS's Swizzle<3,4,3> on a byte offset: bits 7-9 XORed into bits 4-6.
const swizzle343 = (x: number) => x ^ ((x & 0x380) >> 3);

// The grouped order spelled out: per batch, per group of 16 tile rows, column by column, down the rows.
function groupedOrder(tilesM: number, tilesN: number, batch: number): number[][] {
  const order: number[][] = [];
  for (let b = 0; b < batch; b++) {
    for (let first = 0; first < tilesM; first += 16) {
      for (let n = 0; n < tilesN; n++) {
        for (let m = first; m < Math.min(first + 16, tilesM); m++) order.push([m, n, b]);
      }
    }
  }
  return order;
}

const bits = (d: bigint, lo: number, width: number) => Number((d >> BigInt(lo)) & ((1n << BigInt(width)) - 1n));

const built = buildHostCheck('gemm_hopper_layout', [path.join(__dirname, 'gemm_hopper_layout.cpp')]);

t.test('Hopper GEMM layout: swizzle, descriptors, tile order and the emulated kernel', { skip: built.reason ?? false }, async (t) => {
  const result = run(built.binary!);
  t.same(result.failed, [], 'no check failed');
  for (const kind of ['Swizzle<3,4,3>', 'bijection', 'round-trip', 'TMA boxes', 'tile order']) {
    t.ok(result.passed.some((l) => l.includes(kind)), `ran: ${kind}`);
  }
  t.equal(result.passed.filter((l) => l.includes('emulated kernel')).length, 8, 'eight emulated GEMMs');
  t.equal(result.passed.filter((l) => l.includes('segment K1')).length, 3, 'three with a second K segment');
  for (const trans of ['transA 0 transB 0', 'transA 1 transB 0', 'transA 0 transB 1', 'transA 1 transB 1']) {
    t.ok(result.passed.some((l) => l.includes(trans)), `emulated: ${trans}`);
  }
  t.equal(result.status, 0, 'exit 0');

  const swizzled = result.json.get('swizzle')?.[0] as number[];
  t.equal(swizzled.length, 256, 'swizzle dump');
  t.same(
    swizzled,
    swizzled.map((_, i) => swizzle343(16 * i + 3)),
    'swizzle128 matches Swizzle<3,4,3>',
  );

  const descriptors = result.json.get('descriptors')?.[0] as Array<[number, number, number, string]>;
  t.ok(descriptors.length > 50, 'descriptor dump');
  const wrong = descriptors.filter(([start, lbo, sbo, text]) => {
    const d = BigInt(text);
    const fields = [bits(d, 0, 14) << 4, bits(d, 16, 14) << 4, bits(d, 32, 14) << 4, bits(d, 49, 3), bits(d, 62, 2)];
    const reserved = [bits(d, 14, 2), bits(d, 30, 2), bits(d, 46, 3), bits(d, 52, 10)];
    return fields.join() !== [start, lbo, sbo, 0, 1].join() || reserved.some((r) => r !== 0);
  });
  t.same(wrong, [], 'descriptor fields where the PTX ISA puts them, reserved bits clear');

  const orders = result.json.get('tiles') as Array<{ tilesM: number; tilesN: number; batch: number; order: number[][] }>;
  t.ok(orders.length >= 5, 'tile order dumps');
  for (const o of orders) {
    const label = `${o.tilesM}x${o.tilesN} tiles, batch ${o.batch}`;
    t.same(o.order, groupedOrder(o.tilesM, o.tilesN, o.batch), `${label}: grouped order`);
    t.equal(new Set(o.order.map((p) => p.join())).size, o.tilesM * o.tilesN * o.batch, `${label}: every tile once`);
  }
});

t.test('the checks catch deliberately broken variants', { skip: built.reason ?? false }, async (t) => {
  const faults: Array<[string, string]> = [
    ['swizzle', 'emulated kernel'],
    ['kstep', 'emulated kernel'],
    ['lbo', 'emulated kernel 200x300x136'],
    ['order', 'tile order'],
    ['segment', 'segment K1 48'],
    ['segmap', 'segment K1 16'],
  ];
  for (const [fault, symptom] of faults) {
    const result = run(built.binary!, fault);
    t.equal(result.status, 1, `${fault}: exit 1`);
    t.ok(result.failed.some((l) => l.includes(symptom)), `${fault}: reports "${symptom}"`);
  }
  // A broken segment walk leaves single-segment GEMMs alone: the faults are in the segment path.
  for (const fault of ['segment', 'segmap']) {
    const result = run(built.binary!, fault);
    t.ok(result.failed.length > 0 && result.failed.every((l) => l.includes('segment K1')), `${fault}: only segment cases fail`);
  }
});
