/**
 * Thread-count determinism for the nn ops' reductions. The CPU thread count is fixed per process
 * (SEQTUNE_NUM_THREADS), so the tests run this file in child processes with different counts and
 * compare the SHA-256 of every output's bytes. Sizes are chosen so each reduction is split across
 * two threads.
 */
import { embeddingBackward, rmsnormResidual, rmsnormResidualBackward } from '../../lib/ops';
import { tensor, Tensor } from '../../lib/tensor';
import { digestsInChild, runDigestChild } from '../helpers/determinism';
import { hostRng, randomArray, randomInts } from '../helpers/random';

export type DeterminismGroup = 'rmsnorm' | 'embedding';

function outputsFor(group: DeterminismGroup, seed: number): Record<string, Tensor> {
  const rng = hostRng(seed);
  if (group === 'rmsnorm') {
    const [rows, cols] = [512, 1000];
    const x = tensor(randomArray(rng, rows * cols), [rows, cols]);
    const residual = tensor(randomArray(rng, rows * cols), [rows, cols]);
    const weight = tensor(randomArray(rng, cols), [cols]);
    const forward = rmsnormResidual(x, weight, { eps: 1e-6, residual });
    const dout = tensor(randomArray(rng, rows * cols), [rows, cols]);
    const dsum = tensor(randomArray(rng, rows * cols), [rows, cols]);
    const { dx, dweight } = rmsnormResidualBackward(dout, forward, weight, { dsum });
    return { out: forward.out, sum: forward.sum, rstd: forward.rstd, dx, dweight: dweight as Tensor };
  }
  const [tokens, cols, vocab] = [2000, 64, 500];
  const ids = tensor(randomInts(rng, tokens, 0, vocab), [tokens]);
  const dout = randomArray(rng, tokens * cols);
  return {
    dtableF32: embeddingBackward(tensor(dout, [tokens, cols]), ids, vocab),
    dtableBf16: embeddingBackward(tensor(dout, [tokens, cols], { dtype: 'bf16' }), ids, vocab),
  };
}

/** Runs this file in a child with `threads` CPU threads; returns output name → SHA-256. */
export function digestsWithThreads(threads: number, group: DeterminismGroup, seed: number): Record<string, string> {
  return digestsInChild(__filename, threads, [group, String(seed)]);
}

if (require.main === module) runDigestChild((group, seed) => outputsFor(group as DeterminismGroup, seed));
