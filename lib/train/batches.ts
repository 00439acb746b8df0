/**
 * What the training loop consumes: packed micro-batches (lib/data's batch type) from a stream that
 * knows its position, so a checkpoint can record it and a resumed run continues mid-epoch with the
 * very next batch.
 */
import { Batch, IGNORE_INDEX } from '../data/batch';
import { SeqtuneError } from '../errors';
import { BatchLoader, LoaderOptions, LoaderState } from '../data/loader';
import { TokenizedDataset } from '../data/tokenize';
import type { DeviceBatch } from '../model/llama';
import { tensor } from '../tensor';

export type { Batch };

export interface BatchStream {
  /** the next micro-batch; after an epoch's last batch the next epoch (a new order) begins */
  next(): Batch;
  readonly epoch: number;
  batchesPerEpoch(): number;
  /**
   * Streams whose optimizer steps hold a fixed number of examples (stepExamples) give each step's
   * micro-batches here, and their steps per epoch; others give gradAccum next() batches per step.
   */
  nextStep?(): Batch[];
  stepsPerEpoch?(): number;
  /** JSON-serialisable position */
  state(): unknown;
  restore(state: unknown): void;
}

/** The data pipeline's BatchLoader as a resumable stream. */
export function loaderStream(dataset: TokenizedDataset, options: LoaderOptions): BatchStream {
  let loader = new BatchLoader(dataset, options);
  return {
    next: () => loader.next(),
    get epoch() {
      return loader.epoch;
    },
    batchesPerEpoch: () => loader.batchesInEpoch,
    ...(options.stepExamples !== undefined ? { nextStep: () => loader.nextStep(), stepsPerEpoch: () => loader.stepsInEpoch } : {}),
    state: () => loader.state(),
    restore: (state) => {
      loader = new BatchLoader(dataset, options, state as LoaderState);
    },
  };
}

/**
 * What the ops would check on the device, checked here on the host before upload (one pass over
 * the batch): ids in [0, vocabSize), labels in it or IGNORE_INDEX, cuSeqlens from 0 to the token
 * count without decreasing, and every per-token array of the same length. Throws ERR_INDEX (or
 * ERR_SHAPE) naming the field and position.
 */
export function checkBatch(batch: Batch, vocabSize: number): void {
  const T = batch.inputIds.length;
  for (const [name, a] of [['labels', batch.labels], ['positionIds', batch.positionIds]] as const) {
    if (a.length !== T) throw new SeqtuneError(`batch: ${name} has ${a.length} entries for ${T} tokens`, 'ERR_SHAPE');
  }
  for (let i = 0; i < T; i++) {
    const id = batch.inputIds[i];
    if (id < 0 || id >= vocabSize) throw new SeqtuneError(`batch: inputIds[${i}] = ${id} is outside the vocabulary [0, ${vocabSize})`, 'ERR_INDEX');
    const label = batch.labels[i];
    if (label !== IGNORE_INDEX && (label < 0 || label >= vocabSize)) {
      throw new SeqtuneError(`batch: labels[${i}] = ${label} is neither ${IGNORE_INDEX} nor in [0, ${vocabSize})`, 'ERR_INDEX');
    }
  }
  const cu = batch.cuSeqlens;
  if (cu.length < 2 || cu[0] !== 0 || cu[cu.length - 1] !== T) {
    throw new SeqtuneError(`batch: cuSeqlens must run from 0 to the token count ${T}, got [${cu[0]} … ${cu[cu.length - 1]}] (${cu.length} entries)`, 'ERR_INDEX');
  }
  for (let b = 1; b < cu.length; b++) {
    if (cu[b] < cu[b - 1]) throw new SeqtuneError(`batch: cuSeqlens[${b}] = ${cu[b]} is below cuSeqlens[${b - 1}] = ${cu[b - 1]}`, 'ERR_INDEX');
  }
}

/**
 * The batch as device tensors. With vocabSize the batch is checked on the host first (checkBatch)
 * and marked indicesChecked, so the model's ops skip their device-side checks: on CUDA each is a
 * stream synchronisation, and without them a training step is queued without waiting.
 */
export function toDevice(batch: Batch, device: string, vocabSize?: number): DeviceBatch {
  if (vocabSize !== undefined) checkBatch(batch, vocabSize);
  const i32 = (a: Int32Array) => tensor(a, [a.length], { dtype: 'i32', device });
  return {
    inputIds: i32(batch.inputIds),
    labels: i32(batch.labels),
    positionIds: i32(batch.positionIds),
    cuSeqlens: i32(batch.cuSeqlens),
    indicesChecked: vocabSize !== undefined,
  };
}
