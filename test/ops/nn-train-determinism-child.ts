/**
 * Thread-count determinism for the training ops' reductions (linearCrossEntropy's backward,
 * gradNorm). The CPU thread count is fixed per process (SEQTUNE_NUM_THREADS), so tests run this
 * file in child processes with different counts and compare the SHA-256 of every output's bytes.
 * Sizes are chosen so the row loops and the norm's blocks are split across two threads.
 */
import { gradNorm, linearCrossEntropy, linearCrossEntropyBackward } from '../../lib/ops';
import { tensor, Tensor } from '../../lib/tensor';
import { digestsInChild, runDigestChild } from '../helpers/determinism';
import { hostRng, randomArray, randomInts } from '../helpers/random';

export type TrainDeterminismGroup = 'linearCrossEntropy' | 'gradNorm';

function outputsFor(group: TrainDeterminismGroup, seed: number): Record<string, Tensor> {
  const rng = hostRng(seed);
  if (group === 'linearCrossEntropy') {
    // 600 rows exceed one thread's share of a 64-column chunk (512 rows), so rows are split too.
    const [rows, features, vocab, chunkSize] = [600, 16, 300, 64];
    const h = tensor(randomArray(rng, rows * features), [rows, features], { dtype: 'f32' });
    const w = tensor(randomArray(rng, vocab * features, 0.25), [vocab, features], { dtype: 'f32' });
    const labels = tensor(randomInts(rng, rows, 0, vocab), [rows]);
    const forward = linearCrossEntropy(h, w, labels, { chunkSize });
    const { dh, dweight } = linearCrossEntropyBackward(h, w, labels, forward, { chunkSize, gradScale: 0.5 });
    return { loss: forward.loss, lse: forward.lse, dh, dweight: dweight as Tensor };
  }
  // 60017 elements: several 16K-element blocks, shared across threads.
  const sizes = [40000, 17, 20000];
  return {
    norm: gradNorm(sizes.map((n) => tensor(randomArray(rng, n), [n], { dtype: 'f32' }))),
    normBf16: gradNorm(sizes.map((n) => tensor(randomArray(rng, n), [n], { dtype: 'bf16' }))),
  };
}

/** Runs this file in a child with `threads` CPU threads; returns output name → SHA-256. */
export function trainDigestsWithThreads(threads: number, group: TrainDeterminismGroup, seed: number): Record<string, string> {
  return digestsInChild(__filename, threads, [group, String(seed)]);
}

if (require.main === module) runDigestChild((group, seed) => outputsFor(group as TrainDeterminismGroup, seed));
