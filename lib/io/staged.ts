/**
 * Outputs built under a temporary name next to their destination and renamed into place only when
 * complete: an error or a crash leaves the destination as it was (absent, or the previous version),
 * never half-written. Temporary names carry the writer's PID, so a later start can tell a dead
 * process's leftovers from a live one's work and remove them.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SeqtuneError } from '../errors';

/** `<dir>/.<name>.<tag>-<pid>`: hidden, beside the destination (one filesystem, so rename is atomic). */
export function stagedName(dest: string, tag: string, pid = process.pid): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.${tag}-${pid}`);
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporaries in `dir` whose names match `pattern` (its first group is the writer's
 * PID) and whose writer is no longer running. Returns the names removed.
 */
export async function removeStaleTemporaries(dir: string, pattern: RegExp): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match || pidAlive(Number(match[1]))) continue;
    await fs.rm(path.join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Builds the directory `dest` through `build(tempDir)`, then swaps it into place. An existing `dest`
 * is replaced only when `replace` is set (the caller has checked the user asked for it).
 */
export async function writeDirectoryStaged(dest: string, build: (dir: string) => Promise<void>, options: { replace?: boolean } = {}): Promise<void> {
  const temp = stagedName(dest, 'tmp');
  await removeStaleStaged(dest, ['tmp', 'old']);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.rm(temp, { recursive: true, force: true });
  await fs.mkdir(temp);
  try {
    await build(temp);
  } catch (error) {
    await fs.rm(temp, { recursive: true, force: true });
    throw error;
  }
  let old: string | null = null;
  try {
    await fs.rename(temp, dest);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!((code === 'ENOTEMPTY' || code === 'EEXIST') && options.replace)) {
      await fs.rm(temp, { recursive: true, force: true });
      throw code === 'ENOTEMPTY' || code === 'EEXIST' ? new SeqtuneError(`${dest} appeared while it was being written; left it alone`, 'ERR_IO') : error;
    }
    old = stagedName(dest, 'old');
    await fs.rename(dest, old);
    await fs.rename(temp, dest);
  }
  if (old) await fs.rm(old, { recursive: true, force: true });
}

/** Removes the stagedName(dest, tag, pid) entries of `tags` whose process is gone. */
export function removeStaleStaged(dest: string, tags: string[]): Promise<string[]> {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return removeStaleTemporaries(path.dirname(dest), new RegExp(`^\\.${escape(path.basename(dest))}\\.(?:${tags.map(escape).join('|')})-(\\d+)$`));
}
