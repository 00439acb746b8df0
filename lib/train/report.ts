/**
 * Run reporting: metrics JSONL (one object per optimizer step), and a progress line — redrawn in
 * place on a terminal, plain lines every `logEvery` steps otherwise (CI logs, pipes).
 */
import * as fs from 'node:fs';
import { ioError } from '../model/io/safetensors';
import type { StepMetrics } from './trainer';

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function progressLine(m: StepMetrics, totalSteps: number, width = 24): string {
  const done = Math.min(1, m.step / totalSteps);
  const bar = '='.repeat(Math.floor(done * width)).padEnd(width, ' ');
  const eta = (m.elapsedSec / Math.max(1, m.step)) * (totalSteps - m.step);
  const dev = m.devLoss !== undefined ? ` dev ${m.devLoss.toFixed(4)}` : '';
  return `step ${m.step}/${totalSteps} [${bar}] loss ${m.loss.toFixed(4)}${dev} lr ${m.lr.toExponential(2)} ${Math.round(m.tokensPerSec)} tok/s${m.mfu !== undefined ? ` MFU ${(100 * m.mfu).toFixed(1)}%` : ''} ETA ${duration(eta)}`;
}

export class RunReporter {
  private readonly metrics: fs.WriteStream | null;
  private drawn = false;
  /** a write error of the metrics file, raised at the next step or at close (never an unhandled 'error' event) */
  private failure: Error | null = null;

  constructor(
    metricsFile: string | null,
    private readonly totalSteps: number,
    private readonly logEvery: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    if (!metricsFile) {
      this.metrics = null;
      return;
    }
    let fd: number;
    try {
      fd = fs.openSync(metricsFile, 'a');
    } catch (error) {
      throw ioError(metricsFile, 'open for writing', error);
    }
    this.metrics = fs.createWriteStream(metricsFile, { fd });
    this.metrics.on('error', (error) => {
      this.failure ??= ioError(metricsFile, 'write', error);
    });
  }

  step(m: StepMetrics): void {
    if (this.failure) throw this.failure;
    this.metrics?.write(`${JSON.stringify(m)}\n`);
    const line = progressLine(m, this.totalSteps);
    if (this.stream.isTTY) {
      this.stream.write(`\r${line}\x1b[K`);
      this.drawn = true;
    } else if (m.step % this.logEvery === 0 || m.step === this.totalSteps || m.devLoss !== undefined) {
      this.stream.write(`${line}\n`);
    }
  }

  /** A message on its own line (the progress line is redrawn after it). */
  log(message: string): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
    this.stream.write(`${message}\n`);
  }

  async close(): Promise<void> {
    if (this.drawn) this.stream.write('\n');
    if (this.metrics && !this.metrics.destroyed) await new Promise<void>((resolve) => this.metrics!.end(resolve));
    if (this.failure) throw this.failure;
  }
}
