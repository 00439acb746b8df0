/**
 * Trainer checkpoints: everything needed to continue a run exactly — trainable tensors, AdamW
 * moments, the step, the data position and the RNG — in `<out>/checkpoints/step-NNNNNN/`.
 * A checkpoint is written into a temporary directory and renamed into place only when complete,
 * so a crash at any moment leaves the previous checkpoint intact; older ones beyond `keep` are
 * then removed.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SeqtuneError } from '../errors';
import { ioError, SafetensorsFile } from '../model/io/safetensors';
import { tensorEntry, writeSafetensors } from '../model/io/safetensors-writer';
import { writeJsonAtomic } from '../model/io/atomic';
import { RngState } from '../rng';
import { Tensor } from '../tensor';
import type { Schedule } from './schedule';

export interface TrainerState {
  /** optimizer steps done */
  step: number;
  /** the data iterator's position (JSON) */
  data: unknown;
  rng: RngState;
  /** tokens trained on so far */
  tokens: number;
  /** per-step training loss so far, for the loss curve */
  losses: Array<{ step: number; loss: number }>;
  devLosses: Array<{ step: number; loss: number }>;
  /** the config the run was started with (a resume refuses a different one) */
  configHash: string;
  /** the same settings by name, so a refused resume can name what differs (absent in older checkpoints) */
  settings?: Record<string, unknown>;
  /** the learning-rate schedule, with the extensions of resumes that raised the run's length */
  schedule?: Schedule;
}

const TRAINABLE = 'trainable.safetensors';
const OPTIMIZER = 'optimizer.safetensors';
const STATE = 'trainer-state.json';

export function checkpointRoot(out: string): string {
  return path.join(out, 'checkpoints');
}

function stepDir(root: string, step: number): string {
  return path.join(root, `step-${String(step).padStart(6, '0')}`);
}

/** writeCheckpointDir, a failure named as the step's checkpoint under `out`. */
export async function saveCheckpoint(...args: Parameters<typeof writeCheckpointDir>): Promise<string> {
  try {
    return await writeCheckpointDir(...args);
  } catch (error) {
    const [out, state] = args;
    throw ioError(checkpointRoot(out), `save the step-${state.step} checkpoint`, error);
  }
}

async function writeCheckpointDir(
  out: string,
  state: TrainerState,
  trainable: Map<string, Tensor>,
  moments: { m: Map<string, Tensor>; v: Map<string, Tensor> },
  keep: number,
): Promise<string> {
  const root = checkpointRoot(out);
  await fs.mkdir(root, { recursive: true });
  const final = stepDir(root, state.step);
  const temp = path.join(root, `.tmp-${path.basename(final)}-${process.pid}`);
  await fs.rm(temp, { recursive: true, force: true });
  await fs.mkdir(temp);
  try {
    await writeTemp(temp, state, trainable, moments);
  } catch (error) {
    await fs.rm(temp, { recursive: true, force: true });
    throw error;
  }
  await fs.rm(final, { recursive: true, force: true });
  await fs.rename(temp, final);
  const handle = await fs.open(root, 'r');
  try {
    await handle.sync(); // make the rename durable before deleting older checkpoints
  } finally {
    await handle.close();
  }
  const all = await listCheckpoints(out);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) await fs.rm(old.dir, { recursive: true, force: true });
  return final;
}

async function writeTemp(
  temp: string,
  state: TrainerState,
  trainable: Map<string, Tensor>,
  moments: { m: Map<string, Tensor>; v: Map<string, Tensor> },
): Promise<void> {
  await writeSafetensors(path.join(temp, TRAINABLE), [...trainable].map(([n, t]) => tensorEntry(n, t)));
  await writeSafetensors(path.join(temp, OPTIMIZER), [
    ...[...moments.m].map(([n, t]) => tensorEntry(`m.${n}`, t)),
    ...[...moments.v].map(([n, t]) => tensorEntry(`v.${n}`, t)),
  ]);
  await writeJsonAtomic(path.join(temp, STATE), state);
}

export async function listCheckpoints(out: string): Promise<Array<{ step: number; dir: string }>> {
  const root = checkpointRoot(out);
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch {
    return [];
  }
  return names
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: path.join(root, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  trainable: Map<string, Tensor>;
  m: Map<string, Tensor>;
  v: Map<string, Tensor>;
}

/** `from`: a checkpoint directory, or a run's output directory (its latest checkpoint). */
export async function loadCheckpoint(from: string, device: string): Promise<LoadedCheckpoint> {
  let dir = from;
  try {
    await fs.access(path.join(dir, STATE));
  } catch {
    const all = await listCheckpoints(from);
    if (all.length === 0) throw new SeqtuneError(`--resume ${from}: no checkpoint found (expected ${STATE} there or checkpoints/step-N/ under it)`, 'ERR_IO');
    dir = all[all.length - 1].dir;
  }
  const stateFile = path.join(dir, STATE);
  let state: TrainerState;
  try {
    state = JSON.parse(await fs.readFile(stateFile, 'utf8'));
  } catch (error) {
    throw new SeqtuneError(`--resume: ${stateFile} is damaged: ${(error as Error).message}`, 'ERR_IO');
  }
  checkState(state, stateFile);
  const trainable = await readAll(path.join(dir, TRAINABLE), device);
  const moments = await readAll(path.join(dir, OPTIMIZER), device);
  const m = new Map<string, Tensor>();
  const v = new Map<string, Tensor>();
  for (const [name, t] of moments) (name.startsWith('m.') ? m : v).set(name.slice(2), t);
  return { dir, state, trainable, m, v };
}

/** A trainer-state.json that parses but lacks what a resume needs is named, with the field. */
function checkState(state: unknown, file: string): asserts state is TrainerState {
  const s = state as Partial<TrainerState> | null;
  const bad = (field: string, expected: string) => new SeqtuneError(`--resume: ${file} is damaged: ${field} must be ${expected}`, 'ERR_IO');
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw bad('the top level', 'an object');
  if (!Number.isInteger(s.step) || (s.step as number) < 0) throw bad('step', 'a non-negative integer');
  if (typeof s.configHash !== 'string') throw bad('configHash', 'a string');
  if (typeof s.rng !== 'object' || s.rng === null) throw bad('rng', 'an object');
  if (s.data === undefined || s.data === null) throw bad('data (the loader position)', 'present');
  if (typeof s.tokens !== 'number') throw bad('tokens', 'a number');
  if (!Array.isArray(s.losses) || !Array.isArray(s.devLosses)) throw bad('losses and devLosses', 'arrays');
}

async function readAll(file: string, device: string): Promise<Map<string, Tensor>> {
  let reader: SafetensorsFile | undefined;
  try {
    reader = await SafetensorsFile.open(file);
    const out = new Map<string, Tensor>();
    for (const name of reader.names()) out.set(name, await reader.readTensor(name, { device }));
    return out;
  } catch (error) {
    const message = (error as Error).message;
    throw new SeqtuneError(`--resume: ${message.includes(file) ? message : `${file}: ${message}`}`, 'ERR_IO');
  } finally {
    await reader?.close();
  }
}
