/**
 * The data pipeline: reading record files, sequential-instruction augmentation, prompt formats,
 * tokenization and training batches.
 */
export * from './records';
export * from './read';
export * from './write';
export * from './templates';
export * from './sequential';
export * from './translate-v3';
export * from './caption';
export * from './mixing';
export * from './endpoint';
export * from './seq-instruct';
export { classifyMessages, rewriteMessages, parseOption, parseNewInstruction } from './seq-instruct-prompts';
export * from './strategies';
export * from './augment';
export * from './run';
export * from './tokenize';
export * from './batch';
export * from './loader';
