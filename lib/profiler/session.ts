/**
 * The per-op profiler: `seqtune train --profile`, or SEQTUNE_PROFILE=1 (or =FILE.json) for any
 * program. The native side (native/runtime/profiler.h) times every queued op: on a CUDA device
 * with CUDA events on the stream around what it launched, on the CPU with host timers around its
 * run; each record names the op, its tensors, and which kernel ran (hopper, mma, simt, cpu). A
 * training loop marks its steps (beginStep/endStep) so the report (./report.ts) says where each
 * step's time went, gaps between ops included; the Chrome trace opens in Perfetto.
 *
 * Off, it costs one atomic load per op. On, the measured overhead is in bench/NOTES.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../native';
import { profileTables, StepProfile, traceEvents } from './report';

export interface OpRecord {
  op: string;
  device: string;
  /** e.g. "bf16[8192,2048] f32[16,2048] -" ("-": an omitted optional input) */
  inputs: string;
  outputs: string;
  /** the paths that ran, "+"-joined: hopper, mma, simt (CUDA-core kernels), cpu */
  kernels: string;
  /** tasks waiting on the device when JS queued this one: how far the JS thread ran ahead */
  queueDepth: number;
  /** microseconds on the profiler's clock: queued by JS, run by the device thread */
  queuedUs: number;
  hostBeginUs: number;
  hostEndUs: number;
  /** CUDA: the stream's span, on the same clock */
  gpuBeginUs?: number;
  gpuEndUs?: number;
  failed: boolean;
}

export class Profiler {
  readonly steps: StepProfile[] = [];
  /** ops outside any step (model loading, evaluation, or a program that marks no steps) */
  readonly loose: OpRecord[] = [];
  private open?: { step: number; beginUs: number };
  private readonly startedUs: number;

  constructor(readonly device?: string) {
    native().profilerEnable(true);
    this.startedUs = native().profilerNow();
  }

  /** Starts a step: ops queued until endStep belong to it. */
  beginStep(step: number): void {
    this.loose.push(...this.take());
    this.open = { step, beginUs: native().profilerNow() };
  }

  /**
   * Ends the step begun last. Waits for the device's queued work: call it after awaiting a sync,
   * where there is nothing left to wait for.
   */
  endStep(): StepProfile {
    if (!this.open) throw new Error('Profiler.endStep without beginStep');
    const records = this.take();
    const step: StepProfile = { ...this.open, endUs: native().profilerNow(), records };
    this.steps.push(step);
    this.open = undefined;
    return step;
  }

  /** Stops timing ops, keeping what was recorded. */
  stop(): void {
    this.loose.push(...this.take());
    native().profilerEnable(false);
  }

  /** The per-step table and the per-op table (per step), as text. */
  report(): string {
    return profileTables(this.steps, this.loose);
  }

  /** The Chrome trace (trace event format, JSON object form) of everything recorded. */
  trace(meta: Record<string, unknown> = {}): object {
    return {
      traceEvents: traceEvents(this.steps, this.loose),
      displayTimeUnit: 'ms',
      otherData: { producer: 'seqtune profiler', startedUs: this.startedUs, ...meta },
    };
  }

  writeTrace(file: string, meta: Record<string, unknown> = {}): void {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(this.trace(meta)));
  }

  private take(): OpRecord[] {
    return native().profilerTake(this.device);
  }
}

let active: Profiler | undefined;

/** The profiler a training loop reports its steps to, if one is running. */
export function activeProfiler(): Profiler | undefined {
  return active;
}

/** Starts the process-wide profiler (one at a time). */
export function startProfiler(device?: string): Profiler {
  if (active) throw new Error('a profiler is already running');
  active = new Profiler(device);
  return active;
}

/** Stops the process-wide profiler and returns it, with everything it recorded. */
export function stopProfiler(): Profiler | undefined {
  const p = active;
  active = undefined;
  p?.stop();
  return p;
}

/**
 * SEQTUNE_PROFILE=1 (trace to ./seqtune-profile-PID.json) or SEQTUNE_PROFILE=FILE: profiles the
 * whole program and, at exit, prints the tables to stderr and writes the trace. Called when the
 * addon loads.
 */
export function profileFromEnvironment(value = process.env.SEQTUNE_PROFILE): void {
  if (!value || value === '0' || active) return;
  const file = value === '1' ? path.resolve(`seqtune-profile-${process.pid}.json`) : path.resolve(value);
  startProfiler();
  process.once('exit', () => {
    const p = stopProfiler();
    if (!p) return;
    p.writeTrace(file, { command: process.argv.slice(1).join(' ') });
    process.stderr.write(`${p.report()}\nseqtune profile: trace written to ${file} (open it in https://ui.perfetto.dev)\n`);
  });
}
