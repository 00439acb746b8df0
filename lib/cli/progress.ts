/**
 * A progress indicator for the CLI's long loops: one line redrawn in place on a terminal, and in
 * logs (stderr not a TTY) plain lines, one per tenth of the work and one at the end, since a `\r`
 * never returns in a file and every update would pile onto one line.
 */
export class ProgressLine {
  private drawn = false;
  private printedTenth = -1;
  private printedDone = -1;

  constructor(private readonly stream: Pick<NodeJS.WriteStream, 'write' | 'isTTY'> = process.stderr) {}

  update(done: number, total: number, text: string): void {
    if (this.stream.isTTY) {
      this.stream.write(`\r${text}\x1b[K`);
      this.drawn = true;
      return;
    }
    const tenth = total > 0 ? Math.floor((10 * done) / total) : 10;
    if (done === this.printedDone || (tenth <= this.printedTenth && done !== total)) return;
    this.stream.write(`${text}\n`);
    this.printedTenth = tenth;
    this.printedDone = done;
  }

  /** Ends the line on a terminal, with `note` after it; in logs `note` is a line of its own. */
  end(note = ''): void {
    if (this.drawn) this.stream.write(`${note ? ` ${note}` : ''}\n`);
    else if (note) this.stream.write(`${note}\n`);
    this.drawn = false;
  }
}
