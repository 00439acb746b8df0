/**
 * Output paths checked before any work starts, so a bad --out is one clear message (naming the flag
 * and the path) instead of a system error halfway through a run, and an output can never replace
 * one of the command's inputs or silently mix with what a directory already holds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SeqtuneError } from '../errors';

/** Linux's limits: NAME_MAX bytes for one path component, PATH_MAX bytes for a whole path. */
export const NAME_MAX = 255;
export const PATH_MAX = 4096;

export interface OutputPath {
  /** the flag that named it, for messages (e.g. '--out') */
  flag: string;
  path: string;
  kind: 'file' | 'dir';
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

function shorten(name: string): string {
  return name.length > 40 ? `${name.slice(0, 20)}…${name.slice(-12)}` : name;
}

/** Whether this process may create entries in `dir` (tried, not guessed from mode bits: root and read-only mounts differ). */
function canCreateIn(dir: string): string | null {
  const probe = path.join(dir, `.seqtune-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    fs.writeFileSync(probe, '', { flag: 'wx' });
    fs.rmSync(probe, { force: true });
    return null;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? `is not writable (${e.code})` : `cannot be written (${e.code ?? e.message})`;
  }
}

/**
 * Checks that `out` can be created or written: length limits, an existing entry of the wrong kind,
 * a parent that is a file or not writable. Creates nothing.
 */
export function checkOutputPath({ flag, path: out, kind }: OutputPath): void {
  const resolved = path.resolve(out);
  const bytes = Buffer.byteLength(resolved);
  if (bytes > PATH_MAX) throw new SeqtuneError(`${flag}: the path is ${bytes} bytes long, over the system's limit of ${PATH_MAX}`, 'ERR_ARGUMENT');
  for (const part of resolved.split(path.sep)) {
    if (Buffer.byteLength(part) > NAME_MAX) {
      throw new SeqtuneError(`${flag} ${shorten(out)}: the name '${shorten(part)}' is ${Buffer.byteLength(part)} bytes long, over the system's limit of ${NAME_MAX}`, 'ERR_ARGUMENT');
    }
  }
  const existing = statOrNull(resolved);
  if (existing) {
    if (kind === 'dir' && !existing.isDirectory()) throw new SeqtuneError(`${flag} ${out} is a file; give a directory (an existing empty one or a new name)`, 'ERR_ARGUMENT');
    if (kind === 'file' && existing.isDirectory()) throw new SeqtuneError(`${flag} ${out} is a directory; give a file name`, 'ERR_ARGUMENT');
    const problem = canCreateIn(kind === 'dir' ? resolved : path.dirname(resolved));
    if (problem) throw new SeqtuneError(`${flag} ${out}: ${kind === 'dir' ? 'the directory' : 'its folder'} ${problem}`, 'ERR_IO');
    return;
  }
  // the nearest existing ancestor decides whether the missing folders can be made
  let parent = path.dirname(resolved);
  while (!statOrNull(parent) && path.dirname(parent) !== parent) parent = path.dirname(parent);
  const stat = statOrNull(parent);
  if (stat && !stat.isDirectory()) throw new SeqtuneError(`${flag} ${out}: ${parent} is a file, not a folder`, 'ERR_ARGUMENT');
  const problem = canCreateIn(parent);
  if (problem) throw new SeqtuneError(`${flag} ${out}: cannot create it, the folder ${parent} ${problem}`, 'ERR_IO');
}

/** The same file or directory: equal resolved paths, or the same inode when both exist (links). */
function samePath(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true;
  const sa = statOrNull(a);
  const sb = statOrNull(b);
  return sa !== null && sb !== null && sa.dev === sb.dev && sa.ino === sb.ino;
}

/** Whether `inner` is `outer` or lies inside it (by real paths where they exist). */
function within(inner: string, outer: string): boolean {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  const rel = path.relative(real(outer), real(inner));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Refuses an output that is one of the inputs, or (for a directory output) a directory holding one:
 * writing it would destroy the data the command reads.
 */
export function refuseInputAsOutput(out: OutputPath, inputs: Array<{ flag: string; path: string | undefined }>): void {
  for (const input of inputs) {
    if (input.path === undefined) continue;
    if (samePath(out.path, input.path) || (out.kind === 'dir' && within(input.path, out.path))) {
      throw new SeqtuneError(`${out.flag} ${out.path} would overwrite the input ${input.flag} ${input.path}; choose another ${out.flag}`, 'ERR_ARGUMENT');
    }
  }
}

/** The entries of a directory (empty when it does not exist). */
export function directoryEntries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Refuses a non-empty output directory unless the user said what to do with it; `allowed` lists the
 * flags this command offers for that (e.g. ['--resume', '--overwrite']), and the message names them.
 */
export function refuseNonEmptyDir(out: OutputPath, allowed: string[], given: boolean): void {
  if (given) return;
  const entries = directoryEntries(out.path).filter((e) => !e.startsWith('.seqtune-probe-'));
  if (entries.length === 0) return;
  const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? `, … (${entries.length} entries)` : '');
  const options = allowed.map((f) => (f === '--resume' ? `--resume ${out.path} to continue the run there` : f === '--overwrite' ? '--overwrite to replace it' : f));
  throw new SeqtuneError(`${out.flag} ${out.path} is not empty (${shown}); give ${[...options, `another ${out.flag}`].join(', or ')}`, 'ERR_ARGUMENT');
}
