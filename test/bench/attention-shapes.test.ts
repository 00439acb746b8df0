/**
 * bench/attention's rows, checked without a GPU: the packed documents, the FLOP counts the TFLOP/s
 * figures divide, what the torch peer is asked to run, and the equal-length companion of a packed
 * row.
 */
import t from 'tap';
import { allShapes, equalCompanion, forwardFlops, mixedLengths, peerSpec } from '../../bench/attention';

t.test('mixed document lengths: log-uniform in [64, max], summing to the tokens, the same every run', async (t) => {
  for (const [total, max] of [
    [16384, 2048],
    [16384, 8192],
    [1000, 128],
  ]) {
    const docs = mixedLengths(total, max);
    t.equal(
      docs.reduce((a, b) => a + b, 0),
      total,
      `${total} tokens at most ${max}`,
    );
    t.ok(docs.every((len) => Number.isInteger(len) && len >= 1 && len <= max), 'lengths in range');
    t.ok(docs.slice(0, -1).every((len) => len >= 64), 'all but the cut last one at least 64');
    t.ok(new Set(docs).size > Math.min(5, docs.length / 2), 'mixed, not equal');
    t.same(mixedLengths(total, max), docs, 'fixed seed');
  }
  const docs = mixedLengths(1 << 20, 4096);
  const logMean = docs.slice(0, -1).reduce((a, len) => a + Math.log(len), 0) / (docs.length - 1);
  t.ok(Math.abs(logMean - (Math.log(64) + Math.log(4096)) / 2) < 0.1, `log-uniform: mean log length ${logMean.toFixed(3)}`);
});

t.test('rows: equal (FA3 shapes), gqa (32/8 heads, causal) and packed; FLOPs as Σ 4·len²·D·H', async (t) => {
  const shapes = allShapes(16384, [1024, 4096], [64, 128], [2048]);
  const equal = shapes.filter((s) => s.kind === 'equal');
  t.equal(equal.length, 2 * 2 * 2, 'equal: D x mask x length');
  for (const s of equal) {
    t.equal(s.heads * s.headDim, 2048, 'hidden 2048');
    t.equal(s.kvHeads, s.heads);
    const len = s.docs[0];
    t.ok(s.docs.every((d) => d === len) && s.docs.length === 16384 / len, 'batch = tokens / length');
    // The paper's convention, written out per batch: 4·len²·D·H·batch, halved when causal.
    t.equal(forwardFlops(s), (4 * len * len * s.headDim * s.heads * s.docs.length) / (s.causal ? 2 : 1));
  }
  const gqa = shapes.filter((s) => s.kind === 'gqa');
  t.equal(gqa.length, 2 * 2, 'gqa: D x length');
  t.ok(gqa.every((s) => s.heads === 32 && s.kvHeads === 8 && s.causal), 'Llama-3 heads, causal');
  const packed = shapes.filter((s) => s.kind === 'packed');
  t.equal(packed.length, 2, 'packed: one mixture per D');
  for (const s of packed) {
    t.same(s.docs, mixedLengths(16384, 2048));
    let flops = 0;
    for (const len of s.docs) flops += 2 * len * len * s.headDim * s.heads; // causal: half of 4·len²
    t.equal(forwardFlops(s), flops, 'packed FLOPs: per document');
    t.ok(forwardFlops(s) < forwardFlops({ ...s, docs: [16384] }), 'far below one 16k document');
  }
});

t.test('the peer pads documents to the longest; the companion keeps the mean length', async (t) => {
  const [s] = allShapes(4096, [512], [128], [1024]).filter((x) => x.kind === 'packed');
  const spec = peerSpec(s, 7);
  t.same(spec, { id: 7, length: Math.max(...s.docs), batch: s.docs.length, heads: 32, kv_heads: 8, head_dim: 128, causal: true });
  const eq = equalCompanion(s);
  const mean = Math.round(4096 / s.docs.length);
  t.ok(eq.kind === 'equal' && eq.docs.every((d) => d === mean), 'documents of the mean length');
  const tokens = eq.docs.reduce((a, b) => a + b, 0);
  t.ok(tokens <= 4096 && tokens > 4096 - mean, `${tokens} tokens: as many, less a remainder`);
  t.same([eq.heads, eq.kvHeads, eq.headDim, eq.causal], [32, 8, 128, true]);
});
