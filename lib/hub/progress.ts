/**
 * One progress bar for a whole download: bytes done of the total and the rate. On a terminal it
 * redraws one line; elsewhere (a log file, CI) it prints a plain line every few seconds and at the end.
 */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

const TTY_REDRAW_MS = 100;
const LINE_EVERY_MS = 5_000;

export class TransferProgress {
  private done: number;
  private readonly start: number;
  private readonly startBytes: number;
  private lastDraw: number;

  constructor(
    private readonly label: string,
    private readonly total: number,
    already = 0,
    private readonly stream: ProgressStream = process.stderr,
    private readonly now: () => number = Date.now,
  ) {
    this.done = already;
    this.startBytes = already;
    this.start = now();
    this.lastDraw = this.start;
  }

  private line(): string {
    const seconds = Math.max((this.now() - this.start) / 1000, 1e-3);
    const rate = (this.done - this.startBytes) / seconds;
    const percent = this.total > 0 ? Math.floor((100 * this.done) / this.total) : 100;
    return `${this.label}: ${formatBytes(this.done)} / ${formatBytes(this.total)} (${percent}%), ${formatBytes(rate)}/s`;
  }

  add(bytes: number): void {
    this.done += bytes;
    const t = this.now();
    if (t - this.lastDraw < (this.stream.isTTY ? TTY_REDRAW_MS : LINE_EVERY_MS)) return;
    this.lastDraw = t;
    this.stream.write(this.stream.isTTY ? `\r${this.line()}\x1b[K` : `${this.line()}\n`);
  }

  finish(): void {
    this.stream.write(this.stream.isTTY ? `\r${this.line()}\x1b[K\n` : `${this.line()}\n`);
  }
}
