/**
 * The training batch handed to the trainer, in the packed convention of lib/ops.ts: the documents
 * of a batch lie back to back in one row of T tokens (no padding between them).
 *
 * - `inputIds` int32 [T]: the tokens.
 * - `labels` int32 [T]: ALREADY SHIFTED. `labels[i]` is the token the logits of row i must predict,
 *   i.e. `inputIds[i + 1]` of the same document, or -100 (ignored) where there is nothing to learn:
 *   on prompt tokens (the next token is prompt, unless training on inputs), on the last token of
 *   each document (its next token belongs to another document, or to none), and on padding.
 *   So the first response label sits on the LAST PROMPT token: for prompt `p0 p1 p2` and response
 *   `r0 r1 EOS`, labels are `-100 -100 r0 r1 EOS -100`. (Hugging Face passes labels == input_ids and
 *   shifts inside the loss; our cross-entropy op expects them shifted, so do not shift again.)
 * - `positionIds` int32 [T]: 0, 1, 2, ... restarting at 0 at each document start (RoPE positions).
 * - `cuSeqlens` int32 [D+1]: the start of each document over the T tokens, then T. Attention never
 *   crosses these boundaries. When the batch is padded to a fixed T, the padding is one extra
 *   segment at the end (so cuSeqlens has numDocuments + 2 entries, its labels all -100).
 * - `numLabelTokens`: how many labels are not -100 (the loss normaliser).
 * - `numDocuments`: real documents in the batch (padding not counted).
 */
import { SeqtuneError } from '../errors';
import { TokenizedDataset } from './tokenize';

export const IGNORE_INDEX = -100;

export interface Batch {
  inputIds: Int32Array;
  labels: Int32Array;
  positionIds: Int32Array;
  cuSeqlens: Int32Array;
  numLabelTokens: number;
  numDocuments: number;
}

export interface BuildOptions {
  /** pad to exactly this many tokens (default: no padding) */
  padTo?: number;
  /** token id used for padding (default 0; its labels are -100 anyway) */
  padId?: number;
}

/** Packs the given examples, in order, into one batch. */
export function buildBatch(dataset: TokenizedDataset, indices: readonly number[], options: BuildOptions = {}): Batch {
  let total = 0;
  for (const i of indices) total += dataset.length(i);
  const padTo = options.padTo;
  if (padTo !== undefined && padTo < total) throw new SeqtuneError(`batch of ${total} tokens does not fit padTo ${padTo}`, 'ERR_ARGUMENT');
  const size = padTo ?? total;
  const padded = size > total;
  const inputIds = new Int32Array(size);
  const labels = new Int32Array(size).fill(IGNORE_INDEX);
  const positionIds = new Int32Array(size);
  const cuSeqlens = new Int32Array(indices.length + 1 + (padded ? 1 : 0));
  let at = 0;
  let numLabelTokens = 0;
  indices.forEach((index, d) => {
    cuSeqlens[d] = at;
    const ids = dataset.ids(index);
    const target = dataset.target(index);
    inputIds.set(ids, at);
    for (let t = 0; t < ids.length; t++) {
      positionIds[at + t] = t;
      if (t + 1 < ids.length && target[t + 1]) {
        labels[at + t] = ids[t + 1];
        numLabelTokens++;
      }
    }
    at += ids.length;
  });
  if (padded) {
    cuSeqlens[indices.length] = at;
    inputIds.fill(options.padId ?? 0, at);
    for (let t = at; t < size; t++) positionIds[t] = t - at;
  }
  cuSeqlens[cuSeqlens.length - 1] = size;
  return { inputIds, labels, positionIds, cuSeqlens, numLabelTokens, numDocuments: indices.length };
}
