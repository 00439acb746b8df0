import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// The host checks of the CUDA kernels' index math (test/kernels/*.cpp): compiled with g++ and
// run, each prints "ok <check>", "FAIL <check>: ..." and "json <name> <value>" lines and exits 1
// on any failure; an argument names a deliberately broken variant, which must be caught.
export const root = path.resolve(__dirname, '..', '..');

export interface HostCheck {
  binary?: string;
  reason?: string; // why it was not built (no g++): the tests skip
}

export function buildHostCheck(name: string, sources: string[], extraFlags: string[] = []): HostCheck {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `seqtune-${name}-`));
  const binary = path.join(dir, name);
  const flags = ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', ...extraFlags, `-I${root}`];
  const cc = spawnSync('g++', [...flags, ...sources, '-o', binary], { encoding: 'utf8', timeout: 300_000 });
  if (cc.error) return { reason: `g++ not runnable: ${cc.error.message}` };
  if (cc.status !== 0) throw new Error(`g++ failed:\n${cc.stderr}`);
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return { binary };
}

export interface HostCheckRun {
  status: number | null;
  passed: string[];
  failed: string[];
  json: Map<string, unknown[]>;
}

export function runHostCheck(binary: string, fault?: string): HostCheckRun {
  const child = spawnSync(binary, fault ? [fault] : [], { encoding: 'utf8', timeout: 300_000 });
  const lines = (child.stdout ?? '').trim().split('\n');
  const json = new Map<string, unknown[]>();
  for (const line of lines.filter((l) => l.startsWith('json '))) {
    const [, name, ...rest] = line.split(' ');
    json.set(name, [...(json.get(name) ?? []), JSON.parse(rest.join(' '))]);
  }
  return {
    status: child.status,
    passed: lines.filter((l) => l.startsWith('ok ')),
    failed: lines.filter((l) => l.startsWith('FAIL ')),
    json,
  };
}
