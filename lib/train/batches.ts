/**
 * What the training loop consumes: packed micro-batches (lib/data's batch type) from a stream that
 * knows its position, so a checkpoint can record it and a resumed run continues mid-epoch with the
 * very next batch.
 */
import type { DeviceBatch } from '../model/llama';
import { tensor } from '../tensor';

export interface Batch {
  inputIds: Int32Array;
  /** aligned with inputIds: row i predicts labels[i]; -100 = no loss */
  labels: Int32Array;
  positionIds: Int32Array;
  cuSeqlens: Int32Array;
  numLabelTokens: number;
  numDocuments: number;
}

export interface BatchStream {
  /** the next micro-batch of the current epoch, or null when the epoch is exhausted */
  next(): Batch | null;
  /** starts the next epoch (its own deterministic order) */
  nextEpoch(): void;
  readonly epoch: number;
  batchesPerEpoch(): number;
  /** JSON-serialisable position */
  state(): unknown;
  restore(state: unknown): void;
}

/** A stream over batches computed per epoch by a deterministic function (e.g. shuffle by seed + epoch). */
export class EpochBatchStream implements BatchStream {
  private current: Batch[];
  private index = 0;
  epoch = 0;

  constructor(private readonly batchesOf: (epoch: number) => Batch[]) {
    this.current = batchesOf(0);
  }

  next(): Batch | null {
    return this.index < this.current.length ? this.current[this.index++] : null;
  }

  nextEpoch(): void {
    this.epoch++;
    this.current = this.batchesOf(this.epoch);
    this.index = 0;
  }

  batchesPerEpoch(): number {
    return this.current.length;
  }

  state(): unknown {
    return { epoch: this.epoch, index: this.index };
  }

  restore(state: unknown): void {
    const s = state as { epoch: number; index: number };
    this.epoch = s.epoch;
    this.current = this.batchesOf(s.epoch);
    this.index = s.index;
  }
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
