/**
 * Append-only JSONL logs that survive interruption (eval results, judge verdicts). Each batch is
 * appended with one write of whole lines, so a crash can only leave a partial LAST line without
 * its newline. Reading back for a resume cuts such a fragment off (its item is simply redone);
 * any other bad line is an error with file:line, because it means the file was edited or mixed.
 */
import { appendFile, readFile, truncate } from 'node:fs/promises';
import { SeqtuneError } from '../errors';
import { dataError, SourcedValue } from './files';

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SeqtuneError(`cannot read ${file}: ${(error as Error).message}`, 'ERR_IO');
  }
}

/**
 * Reads a log; a missing file is an empty log. With `repair`, a final line without a newline that
 * does not parse is removed from the file, and one that does parse gets its newline.
 */
export async function readLog(file: string, repair: boolean): Promise<SourcedValue[]> {
  const text = await readIfExists(file);
  if (text === null) return [];
  const lines = text.split('\n');
  const tail = lines.pop() ?? '';
  if (tail.trim() !== '') {
    let complete = true;
    try {
      JSON.parse(tail);
    } catch {
      complete = false;
    }
    if (!repair) throw dataError({ file, line: lines.length + 1 }, complete ? 'last line has no newline' : 'last line is cut off (interrupted write?)');
    if (complete) {
      await appendFile(file, '\n');
      lines.push(tail);
    } else {
      await truncate(file, Buffer.byteLength(text) - Buffer.byteLength(tail));
    }
  }
  const values: SourcedValue[] = [];
  lines.forEach((raw, i) => {
    if (raw.trim() === '') return;
    try {
      values.push({ value: JSON.parse(raw), line: i + 1, index: values.length, at: { file, line: i + 1 } });
    } catch (error) {
      throw dataError({ file, line: i + 1 }, `invalid JSON: ${(error as Error).message}`);
    }
  });
  return values;
}

export async function appendLog(file: string, values: unknown[]): Promise<void> {
  if (values.length === 0) return;
  await appendFile(file, values.map((v) => `${JSON.stringify(v)}\n`).join(''));
}
