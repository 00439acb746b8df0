/**
 * seqtune: sequential instruction tuning of LLaMA-family models from Node.js.
 * The public API: tensors and devices, the op interface, the model (checkpoints, tokenizer, LoRA,
 * generation, PEFT adapters, models by Hub id), the SIT data pipeline, training and evaluation. Every CLI command is
 * a thin wrapper over one of these functions.
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

// model
export { LlamaModel, loraScale } from './model/llama';
export type { LlamaArch, LoraConfig, DeviceBatch } from './model/llama';
export { loadModel } from './model/load';
export type { LoadModelOptions, LoadedModel } from './model/load';
export { generate } from './model/generate';
export type { GenerateOptions, Generation } from './model/generate';
export { saveAdapter, loadAdapter, mergedWeights, peftKey } from './model/adapter';
export { openModelDir, loadWeights, saveModelDir } from './model/io/model-dir';
export { readModelConfig, parseModelConfig, modelConfigToJson, llamaArch } from './model/config';
export type { ModelConfig } from './model/config';
export { HfTokenizer } from './model/tokenizer';
export { initModel } from './model/init-model';
export { SafetensorsFile } from './model/io/safetensors';
export { CheckpointReader, writeCheckpoint } from './model/io/checkpoint';
export { writeSafetensors, tensorEntry } from './model/io/safetensors-writer';
export { promptFormat } from './model/prompt-format';

// models by Hub id (`seqtune download`, --model ORG/NAME[@REVISION])
export { fetchSnapshot } from './hub/snapshot';
export type { FetchOptions, Snapshot } from './hub/snapshot';
export { resolveModel } from './hub/resolve';
export { parseHubRef } from './hub/repo-id';
export { HubError } from './hub/api';

// data, training, evaluation
export * as data from './data';
export { train, saveFullModel } from './train/train';
export { runTraining } from './train/trainer';
export type { StepMetrics, TrainingRun, TrainingResult } from './train/trainer';
export { resolveConfig, loadConfigFile, presets as trainPresets, defaultConfig as defaultTrainConfig } from './train/config';
export type { TrainConfig } from './train/config';
export * as evaluation from './eval';
