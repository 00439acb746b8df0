/**
 * A small incremental scanner for a top-level JSON array: fed text chunks, it yields the source
 * text of each element with the line it starts on, so a multi-GB `[...]` file is never held in
 * memory (only the element being scanned is). Elements are parsed by JSON.parse afterwards; the
 * scanner only finds their boundaries (strings, escapes and bracket depth), which is why an element
 * with bad JSON inside balanced brackets can still be skipped while a broken structure cannot.
 */
import { SeqtuneError } from '../errors';

export interface ArrayElement {
  text: string;
  line: number;
}

const enum State {
  BeforeArray,
  ExpectValue,
  InValue,
  AfterValue,
  Done,
}

const QUOTE = 34;
const BACKSLASH = 92;
const NEWLINE = 10;

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

export class JsonArrayScanner {
  private state = State.BeforeArray;
  private line = 1;
  private depth = 0;
  private inString = false;
  private escape = false;
  private parts: string[] = [];
  private startLine = 0;
  /** the first element may follow '[' directly; later ones need a ',' first */
  private sawElement = false;

  constructor(private readonly file: string) {}

  private fail(reason: string): SeqtuneError {
    return new SeqtuneError(`${this.file}:${this.line}: ${reason}`, 'ERR_DATA');
  }

  /** Scans one chunk and returns the elements completed in it. */
  push(chunk: string): ArrayElement[] {
    const out: ArrayElement[] = [];
    let valueStart = this.state === State.InValue ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.state === State.InValue) {
        if (this.inString) {
          if (this.escape) this.escape = false;
          else if (c === BACKSLASH) this.escape = true;
          else if (c === QUOTE) this.inString = false;
          else if (c === NEWLINE) this.line++;
          continue;
        }
        if (c === QUOTE) this.inString = true;
        else if (c === 123 || c === 91) this.depth++;
        else if (c === 125 || c === 93) {
          if (this.depth === 0) {
            // ']' ending the array right after a scalar element
            this.finishValue(chunk, valueStart, i, out);
            valueStart = -1;
            i--;
            continue;
          }
          this.depth--;
          if (this.depth === 0) {
            this.finishValue(chunk, valueStart, i + 1, out);
            valueStart = -1;
          }
        } else if (this.depth === 0 && (c === 44 || isSpace(c))) {
          // end of a scalar element (number, true, false, null)
          this.finishValue(chunk, valueStart, i, out);
          valueStart = -1;
          i--;
        } else if (c === NEWLINE) this.line++;
        continue;
      }
      if (c === NEWLINE) this.line++;
      if (isSpace(c)) continue;
      switch (this.state) {
        case State.BeforeArray:
          if (c !== 91) throw this.fail(`expected '[' at the start of a JSON array file, got '${chunk[i]}'`);
          this.state = State.ExpectValue;
          break;
        case State.ExpectValue:
          if (c === 93 && !this.sawElement) {
            this.state = State.Done;
            break;
          }
          if (c === 93 || c === 44) throw this.fail(`expected a value, got '${chunk[i]}'`);
          this.state = State.InValue;
          this.startLine = this.line;
          this.sawElement = true;
          valueStart = i;
          if (c === QUOTE) this.inString = true;
          else if (c === 123 || c === 91) this.depth = 1;
          else this.depth = 0;
          break;
        case State.AfterValue:
          if (c === 44) this.state = State.ExpectValue;
          else if (c === 93) this.state = State.Done;
          else throw this.fail(`expected ',' or ']' after an array element, got '${chunk[i]}'`);
          break;
        case State.Done:
          throw this.fail(`unexpected '${chunk[i]}' after the end of the array`);
      }
    }
    if (this.state === State.InValue && valueStart >= 0) this.parts.push(chunk.slice(valueStart));
    return out;
  }

  private finishValue(chunk: string, start: number, end: number, out: ArrayElement[]): void {
    this.parts.push(chunk.slice(Math.max(start, 0), end));
    out.push({ text: this.parts.join(''), line: this.startLine });
    this.parts = [];
    this.depth = 0;
    this.state = State.AfterValue;
  }

  /** Call at the end of input: throws if the array is not closed. */
  end(): void {
    if (this.state === State.BeforeArray) return; // empty file: no records
    if (this.state !== State.Done) throw this.fail('unexpected end of file inside the JSON array');
  }
}
