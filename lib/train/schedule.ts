/**
 * Learning-rate schedules (as transformers' get_*_schedule_with_warmup): linear warmup from 0 over
 * `warmupSteps`, then constant, linear decay to 0, or cosine decay to 0 at `totalSteps`.
 */
export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface Schedule {
  kind: ScheduleKind;
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /**
   * Runs extended past their first end (a resume with a larger step count), in order: after step
   * `atStep` the rate decays in the same form from `lr`, the rate step `atStep` had, so there is no
   * jump, to the new end `toTotalSteps`.
   */
  extensions?: Extension[];
}

export interface Extension {
  atStep: number;
  fromTotalSteps: number;
  toTotalSteps: number;
  lr: number;
}

/** The learning rate of optimizer step `step` (1-based). */
export function learningRate(schedule: Schedule, step: number): number {
  const extension = schedule.extensions?.filter((e) => e.atStep < step).pop();
  if (extension && extension.atStep >= schedule.warmupSteps) {
    // the same form from (atStep, lr) to zero one step past the new end, as the first stretch does
    const progress = (step - extension.atStep) / (extension.toTotalSteps + 1 - extension.atStep);
    if (schedule.kind === 'constant') return extension.lr;
    if (schedule.kind === 'linear') return extension.lr * Math.max(0, 1 - progress);
    return extension.lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
  }
  // an extension made during warmup keeps the warmup and decays to the new end
  const { kind, lr, warmupSteps } = schedule;
  const totalSteps = extension ? extension.toTotalSteps : schedule.totalSteps;
  const s = step - 1; // transformers counts from 0
  if (s < warmupSteps) return (lr * s) / Math.max(1, warmupSteps);
  if (kind === 'constant') return lr;
  const progress = (s - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  if (kind === 'linear') return lr * Math.max(0, 1 - progress);
  return lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

/** The schedule extended at `atStep` (the steps done) to `toTotalSteps`. */
export function extendSchedule(schedule: Schedule, atStep: number, toTotalSteps: number): Schedule {
  const fromTotalSteps = schedule.extensions?.length ? schedule.extensions[schedule.extensions.length - 1].toTotalSteps : schedule.totalSteps;
  const extension = { atStep, fromTotalSteps, toTotalSteps, lr: learningRate(schedule, atStep) };
  return { ...schedule, extensions: [...(schedule.extensions ?? []), extension] };
}

/** warmup given as steps, or as a ratio of the total (rounded up, as transformers does). */
export function warmupSteps(total: number, warmup: { steps?: number; ratio?: number }): number {
  if (warmup.steps !== undefined) return warmup.steps;
  return Math.ceil(total * (warmup.ratio ?? 0));
}
