/**
 * What the training loop consumes: packed micro-batches (lib/data's batch type) from a stream that
 * knows its position, so a checkpoint can record it and a resumed run continues mid-epoch with the
 * very next batch.
 */
import type { Batch } from '../data/batch';
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
    state: () => loader.state(),
    restore: (state) => {
      loader = new BatchLoader(dataset, options, state as LoaderState);
    },
  };
}

export function toDevice(batch: Batch, device: string): DeviceBatch {
  const i32 = (a: Int32Array) => tensor(a, [a.length], { dtype: 'i32', device });
  return {
    inputIds: i32(batch.inputIds),
    labels: i32(batch.labels),
    positionIds: i32(batch.positionIds),
    cuSeqlens: i32(batch.cuSeqlens),
  };
}
