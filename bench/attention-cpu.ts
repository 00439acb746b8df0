/**
 * CPU attention throughput: tokens per second of `attention` (forward) and `attentionBackward`
 * at LLaMA-style head shapes (H = 8, Hkv = 2, D = 64), causal, over packed batches of 512 to 2048
 * tokens in one document, and 2048 as 4 documents of 512 (cost per token grows with document
 * length, not with the batch). bench/cpu.ts prints the rows. About 20 s on 2 cores.
 */
import { attention, attentionBackward } from '../lib/ops';
import { Rng } from '../lib/rng';
import { randn, scope, sync, tensor } from '../lib/tensor';
import { medianSeconds } from './common/report';

/** Median seconds of fn and its queued work, at least 3 timed runs (and about 1 s) after one warm-up. */
function cpuSeconds(fn: () => void): Promise<number> {
  // scope disposes the outputs of each run; sync waits for the queued work.
  const run = () =>
    scope(async () => {
      fn();
      await sync('cpu');
    });
  return medianSeconds(run, { warmup: 1, minRuns: 3, minMs: 1000, maxRuns: 20 });
}

export interface AttentionBenchRow {
  tokens: number;
  documents: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  forwardTokensPerSec: number;
  backwardTokensPerSec: number;
}

export async function benchAttentionCpu(): Promise<AttentionBenchRow[]> {
  const [heads, kvHeads, headDim] = [8, 2, 64];
  const rng = new Rng(1234);
  const rows: AttentionBenchRow[] = [];
  for (const [tokens, docs] of [
    [512, 1],
    [1024, 1],
    [2048, 1],
    [2048, 4],
  ]) {
    const row = await scope(async () => {
      const q = randn([tokens, heads, headDim], { rng });
      const k = randn([tokens, kvHeads, headDim], { rng });
      const v = randn([tokens, kvHeads, headDim], { rng });
      const dout = randn([tokens, heads, headDim], { rng });
      const cu = Int32Array.from({ length: docs + 1 }, (_, b) => (b * tokens) / docs);
      const options = { cuSeqlens: tensor(cu, [docs + 1]), causal: true };
      const forward = attention(q, k, v, options);
      const fwdSeconds = await cpuSeconds(() => attention(q, k, v, options));
      const bwdSeconds = await cpuSeconds(() => attentionBackward(dout, q, k, v, forward, options));
      const [forwardTokensPerSec, backwardTokensPerSec] = [tokens / fwdSeconds, tokens / bwdSeconds];
      return { tokens, documents: docs, heads, kvHeads, headDim, forwardTokensPerSec, backwardTokensPerSec };
    });
    rows.push(row);
  }
  return rows;
}
