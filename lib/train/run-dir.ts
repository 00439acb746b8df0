/**
 * A training run's output directory, made ready before any work: the path checked, a non-empty
 * directory refused unless the user resumes or overwrites it, the run lock taken (one process per
 * directory), a dead process's temporaries removed, and on a resume the metrics of steps after the
 * checkpoint dropped (they are trained again, and would otherwise appear twice).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ioError } from '../model/io/safetensors';
import { checkOutputPath, refuseInputAsOutput, refuseNonEmptyDir } from '../io/out-path';
import { acquireRunLock, RunLock } from '../io/run-lock';
import { removeStaleTemporaries } from '../io/staged';
import { checkpointRoot } from './checkpoint';
import type { TrainConfig } from './config';

export const METRICS_FILE = 'metrics.jsonl';
/** what a run writes in its directory: --overwrite removes these and leaves anything else alone */
const RUN_ARTIFACTS = ['checkpoints', METRICS_FILE, 'loss.svg', 'summary.json', 'adapter', 'model'];
/** checkpoints/.tmp-step-N-PID (lib/train/checkpoint.ts) */
const CHECKPOINT_TEMP = /^\.tmp-step-\d+-(\d+)$/;
/** .NAME.PID.HEX.tmp (writeFileAtomic, lib/model/io/atomic.ts) */
const FILE_TEMP = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

export interface RunDirectory {
  lock: RunLock;
  /** temporaries of a killed run that were removed */
  removed: string[];
}

/** Refuses an --out that cannot be the run's directory, touching nothing (train checks it before any other work). */
export function checkRunDirectory(config: TrainConfig, options: { resume?: string; overwrite?: boolean }): void {
  const out = { flag: '--out', path: config.out, kind: 'dir' as const };
  checkOutputPath(out);
  refuseInputAsOutput(out, [
    { flag: '--model', path: config.model },
    ...config.data.map((d) => ({ flag: '--data', path: d })),
    { flag: '--dev', path: config.dev },
  ]);
  refuseNonEmptyDir(out, ['--resume', '--overwrite'], options.resume !== undefined || options.overwrite === true);
}

export async function openRunDirectory(config: TrainConfig, options: { resume?: string; overwrite?: boolean }): Promise<RunDirectory> {
  checkRunDirectory(config, options);
  try {
    fs.mkdirSync(config.out, { recursive: true });
  } catch (error) {
    throw ioError(config.out, 'create the output directory', error);
  }
  const lock = acquireRunLock(config.out, 'train');
  try {
    if (options.overwrite) {
      for (const name of RUN_ARTIFACTS) fs.rmSync(path.join(config.out, name), { recursive: true, force: true });
    }
    const checkpoints = checkpointRoot(config.out);
    if (fs.existsSync(checkpoints)) checkOutputPath({ flag: '--out', path: checkpoints, kind: 'dir' });
    const removed = [
      ...(await removeStaleTemporaries(checkpoints, CHECKPOINT_TEMP)),
      ...(await removeStaleTemporaries(checkpoints, FILE_TEMP)),
      ...(await removeStaleTemporaries(config.out, FILE_TEMP)),
      ...(await removeStaleTemporaries(path.join(config.out, 'adapter'), FILE_TEMP)),
      ...(await removeStaleTemporaries(path.join(config.out, 'model'), FILE_TEMP)),
    ];
    return { lock, removed };
  } catch (error) {
    lock.release();
    throw error;
  }
}

/**
 * Keeps the metrics lines of steps up to `step` (the checkpoint a resume starts from) and drops the
 * rest, including a half-written last line.
 */
export function trimMetrics(out: string, step: number): number {
  const file = path.join(out, METRICS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return 0;
  }
  const kept: string[] = [];
  let dropped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let entry: { step?: unknown } | null = null;
    try {
      entry = JSON.parse(line);
    } catch {
      entry = null;
    }
    if (entry && typeof entry.step === 'number' && entry.step <= step) kept.push(line);
    else dropped++;
  }
  if (dropped > 0) {
    const temp = `${file}.${process.pid}.trim`;
    fs.writeFileSync(temp, kept.map((l) => `${l}\n`).join(''));
    fs.renameSync(temp, file);
  }
  return dropped;
}
