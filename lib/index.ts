/**
 * seqtune: sequential instruction tuning of LLaMA-family models from Node.js.
 * The public API: tensors and devices, the op interface, and (as they land) the model, data,
 * training and evaluation modules.
 */
export { SeqtuneError, isSeqtuneError } from './errors';
export type { ErrorCode } from './errors';
export { devices, resolveDevice, memoryStats, packageVersion } from './device';
export type { DeviceReport, DeviceSpec, ResolvedDevice } from './device';
export { Tensor, tensor, zeros, full, randn, rand, scope, keep, sync } from './tensor';
export type { DType, Shape, CreateOptions } from './tensor';
export { Rng, HostRng } from './rng';
export type { RngState } from './rng';
export * as ops from './ops';
export type { TextTokenizer } from './text-tokenizer';
