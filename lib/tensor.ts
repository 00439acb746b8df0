/**
 * Tensors: typed handles over native storage on `cpu` or `cuda:N`.
 *
 * Execution model: an op call checks its arguments and queues the work on the tensor's device,
 * returning output tensors at once; only reading data back (`toArray()`, `item()`) is awaited.
 * A failure during the queued work (say, a token id out of range) is reported by the read-back of
 * any tensor computed from it, with the failing op's message. Memory: `dispose()` frees a tensor's
 * memory as soon as queued work no longer needs it; `scope()` disposes every tensor created inside
 * it except those it returns or `keep()`s.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { SeqtuneError } from './errors';
import { native, NativeDType, NativeTensor } from './native';
import { Rng } from './rng';

export type DType = NativeDType;
export type DeviceName = 'cpu' | `cuda:${number}`;
export type Shape = readonly number[];
export type HostArray = Float32Array | Float64Array | Int32Array;

export interface CreateOptions {
  dtype?: DType;
  device?: DeviceName | string;
}

const scopeStorage = new AsyncLocalStorage<Set<Tensor>>();

export class Tensor {
  /** @internal */
  readonly handle: NativeTensor;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: string;

  /** @internal Wraps a native handle; use the factory functions instead. */
  constructor(handle: NativeTensor) {
    this.handle = handle;
    this.shape = Object.freeze(handle.shape);
    this.dtype = handle.dtype;
    this.device = handle.device;
    scopeStorage.getStore()?.add(this);
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.handle.disposed;
  }

  /** Frees the tensor's memory once queued work is done with it. Safe to call twice. */
  dispose(): void {
    this.handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Same storage, another shape with the same element count. */
  reshape(shape: Shape): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== this.numel) {
      throw new SeqtuneError(`cannot reshape ${this.describe()} to [${shape.join(',')}]: ${n} != ${this.numel} elements`, 'ERR_SHAPE');
    }
    return new Tensor(this.handle.view([...shape]));
  }

  /** Rows [start, start + count) along the first dimension, sharing storage. */
  rows(start: number, count: number): Tensor {
    const rowSize = this.numel / (this.shape[0] || 1);
    if (this.rank === 0 || start < 0 || count < 0 || start + count > this.shape[0]) {
      throw new SeqtuneError(`rows(${start}, ${count}) out of range for ${this.describe()}`, 'ERR_SHAPE');
    }
    return new Tensor(this.handle.view([count, ...this.shape.slice(1)], start * rowSize));
  }

  /** Raw bytes in the tensor's dtype. */
  async toBytes(): Promise<ArrayBuffer> {
    return this.handle.toHost();
  }

  /** Contents as a host array: Float64Array for f64, Int32Array for i32, else Float32Array. */
  async toArray(): Promise<HostArray> {
    if (this.dtype === 'f32' || this.dtype === 'f64' || this.dtype === 'i32') {
      const bytes = await this.handle.toHost();
      return this.dtype === 'f32' ? new Float32Array(bytes) : this.dtype === 'f64' ? new Float64Array(bytes) : new Int32Array(bytes);
    }
    const asF32 = new Tensor(native().runOp('cast', [this.handle], { dtype: 'f32' })[0]);
    try {
      return new Float32Array(await asF32.handle.toHost());
    } finally {
      asF32.dispose();
    }
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.numel !== 1) throw new SeqtuneError(`item() needs a one-element tensor, got ${this.describe()}`, 'ERR_SHAPE');
    return (await this.toArray())[0];
  }

  describe(): string {
    return `${this.dtype}[${this.shape.join(',')}] on ${this.device}`;
  }
}

function hostArrayFor(dtype: DType, data: ArrayLike<number>): ArrayBufferView {
  if (dtype === 'i32') return data instanceof Int32Array ? data : Int32Array.from(data);
  if (dtype === 'f64') return data instanceof Float64Array ? data : Float64Array.from(data);
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

/** A shape argument checked where it enters (a missing or malformed one would fail deep inside as a bare TypeError). */
function checkShape(shape: unknown, where: string): asserts shape is Shape {
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 0)) {
    let got: string;
    try {
      got = JSON.stringify(shape) ?? String(shape);
    } catch {
      got = String(shape);
    }
    throw new SeqtuneError(`${where}: shape must be an array of non-negative integers, e.g. [2, 3]; got ${got}`, 'ERR_SHAPE');
  }
}

/** A tensor holding a copy of `data` (bf16/f16 are rounded from the f32 values). */
export function tensor(data: ArrayLike<number>, shape: Shape, options: CreateOptions = {}): Tensor {
  checkShape(shape, 'tensor');
  const dtype = options.dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Float64Array ? 'f64' : 'f32');
  const device = options.device ?? 'cpu';
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) {
    throw new SeqtuneError(`data has ${data.length} elements but shape [${shape.join(',')}] needs ${n}`, 'ERR_SHAPE');
  }
  if (dtype === 'bf16' || dtype === 'f16') {
    const staged = native().fromHost(device, 'f32', [...shape], hostArrayFor('f32', data));
    try {
      return new Tensor(native().runOp('cast', [staged], { dtype })[0]);
    } finally {
      staged.dispose();
    }
  }
  return new Tensor(native().fromHost(device, dtype, [...shape], hostArrayFor(dtype, data)));
}

export function zeros(shape: Shape, options: CreateOptions = {}): Tensor {
  checkShape(shape, 'zeros');
  return new Tensor(native().fromHost(options.device ?? 'cpu', options.dtype ?? 'f32', [...shape], null));
}

export function full(shape: Shape, value: number, options: CreateOptions = {}): Tensor {
  checkShape(shape, 'full');
  return new Tensor(
    native().runOp('fill', [], { shape: [...shape], value, dtype: options.dtype, device: options.device })[0],
  );
}

export interface RandomOptions extends CreateOptions {
  rng: Rng;
}

/** Normal(mean, std) from the counter-based generator: identical on every device. */
export function randn(shape: Shape, options: RandomOptions & { mean?: number; std?: number }): Tensor {
  return random('randomNormal', 'randn', shape, options, { mean: options.mean, std: options.std });
}

/** Uniform in [low, high) from the counter-based generator. */
export function rand(shape: Shape, options: RandomOptions & { low?: number; high?: number }): Tensor {
  return random('randomUniform', 'rand', shape, options, { low: options.low, high: options.high });
}

function random(op: string, name: string, shape: Shape, options: RandomOptions, range: Record<string, number | undefined>): Tensor {
  checkShape(shape, name);
  const { seed, offset } = options.rng.next();
  const attrs = { shape: [...shape], seed, offset, ...range, dtype: options.dtype, device: options.device };
  return new Tensor(native().runOp(op, [], attrs)[0]);
}

type Returned = Tensor | readonly unknown[] | { [key: string]: unknown } | unknown;

function collectTensors(value: Returned, into: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    into.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) collectTensors(item, into, depth + 1);
  } else if (value instanceof Map) {
    for (const item of value.values()) collectTensors(item, into, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) collectTensors(item, into, depth + 1);
  }
}

/**
 * Runs fn and disposes every tensor it created that is not part of its result (a tensor, or
 * arrays/plain objects/Maps of tensors, which then belong to the enclosing scope, if any) and was
 * not passed to keep(). Works with async fn: tensors
 * are tracked through the async context, so concurrent scopes do not mix.
 */
export function scope<T>(fn: () => T): T {
  const created = new Set<Tensor>();
  const parent = scopeStorage.getStore();
  const finish = (result: unknown) => {
    const survivors = new Set<Tensor>();
    collectTensors(result, survivors);
    for (const t of created) {
      if (kept.has(t)) continue; // owned by whoever kept it, whatever scopes enclose this one
      if (survivors.has(t)) parent?.add(t);
      else t.dispose();
    }
  };
  let result: T;
  try {
    result = scopeStorage.run(created, fn);
  } catch (error) {
    finish(undefined);
    throw error;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        finish(value);
        return value;
      },
      (error) => {
        finish(undefined);
        throw error;
      },
    ) as T;
  }
  finish(result);
  return result;
}

const kept = new WeakSet<Tensor>();

/** Disposes every tensor in `value` (a tensor, or arrays/plain objects/Maps of tensors). */
export function disposeAll(value: unknown): void {
  const tensors = new Set<Tensor>();
  collectTensors(value, tensors);
  for (const t of tensors) t.dispose();
}

/**
 * Exempts tensors from disposal by every enclosing scope(): the caller owns them and disposes them
 * (a scope's result, by contrast, joins the enclosing scope).
 */
export function keep<T extends Tensor | Tensor[]>(tensors: T): T {
  for (const t of Array.isArray(tensors) ? tensors : [tensors]) kept.add(t);
  return tensors;
}

/** Waits for all queued work on a device; rejects with the first error since the last sync. */
export async function sync(device: string = 'cpu'): Promise<void> {
  await native().sync(device);
}
