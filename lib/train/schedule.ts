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
}

/** The learning rate of optimizer step `step` (1-based). */
export function learningRate(schedule: Schedule, step: number): number {
  const { kind, lr, warmupSteps, totalSteps } = schedule;
  const s = step - 1; // transformers counts from 0
  if (s < warmupSteps) return (lr * s) / Math.max(1, warmupSteps);
  if (kind === 'constant') return lr;
  const progress = (s - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  if (kind === 'linear') return lr * Math.max(0, 1 - progress);
  return lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

/** warmup given as steps, or as a ratio of the total (rounded up, as transformers does). */
export function warmupSteps(total: number, warmup: { steps?: number; ratio?: number }): number {
  if (warmup.steps !== undefined) return warmup.steps;
  return Math.ceil(total * (warmup.ratio ?? 0));
}
