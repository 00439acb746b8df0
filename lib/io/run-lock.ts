/**
 * A run directory's lock: `<dir>/.seqtune.lock` holds the PID (and host) of the process working in
 * it, created exclusively, so a second process on the same directory stops with a message instead
 * of interleaving checkpoints and metrics. A lock whose process is gone (a crash, a kill -9) is
 * stale and taken over. Released on return and, as a last resort, when the process exits.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SeqtuneError } from '../errors';

export const LOCK_FILE = '.seqtune.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(file: string): LockInfo | null {
  try {
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    return Number.isInteger(info.pid) ? info : null;
  } catch {
    return null;
  }
}

export interface RunLock {
  file: string;
  /** the previous holder's PID when its stale lock was taken over */
  replacedStale: number | null;
  release(): void;
}

export function acquireRunLock(dir: string, command = 'train'): RunLock {
  const file = path.join(dir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command };
  let replacedStale: number | null = null;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(mine)}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new SeqtuneError(`${dir}: another process took the run lock ${file} at the same moment`, 'ERR_IO');
        throw new SeqtuneError(`${file}: cannot create the run lock: ${(error as Error).message}`, 'ERR_IO');
      }
      const held = readLock(file);
      // another host's PID cannot be checked from here: only a lock from this host can be stale
      if (held && (held.host !== mine.host || alive(held.pid))) {
        throw new SeqtuneError(
          `${dir} is in use by another seqtune ${held.command} (pid ${held.pid} on ${held.host}, since ${held.started}); ` +
            `wait for it, stop it, or use another --out (if no such process runs, delete ${file})`,
          'ERR_IO',
        );
      }
      replacedStale = held?.pid ?? -1;
      fs.rmSync(file, { force: true });
    }
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { file, replacedStale, release };
}
