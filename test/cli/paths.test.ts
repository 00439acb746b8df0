/**
 * Path errors as a user meets them (the compiled CLI in a child process): each is one line naming
 * the flag or the file, a non-zero exit, and never a stack trace.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { saveCheckpoint } from '../../lib/train/checkpoint';
import { RunReporter } from '../../lib/train/report';
import { tensor } from '../../lib/tensor';
import { hostRng, testSeed } from '../helpers/random';
import { dataFile, sampleRecords, tempOut, tinyModelDir } from '../train/fixtures';

const cli = path.resolve(__dirname, '../../dist/lib/cli.js');
const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);
const root = process.getuid?.() === 0;
const common = ['--device', 'cpu', '--batch-size', '2', '--max-length', '64', '--max-steps', '2'];

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

function randomName(bytes: number): string {
  return Array.from({ length: bytes }, () => 'abcdefghijklmnopqrstuvwxyz'[rng.int(26)]).join('');
}

t.test('path errors: one line, the flag or file named, no stack trace', async (t) => {
  const model = await tinyModelDir(seed);
  const data = dataFile(sampleRecords);
  const base = path.dirname(tempOut());
  const aFile = path.join(base, 'a-file.txt');
  fs.writeFileSync(aFile, 'not a directory');
  const longName = path.join(base, randomName(256 + rng.int(100)));
  let longPath = base;
  while (Buffer.byteLength(longPath) <= 4096) longPath = path.join(longPath, randomName(200));
  // a folder this process cannot create entries in: a read-only mode bit, or (as root, who ignores it) sysfs
  const unwritable = root ? '/sys/seqtune-out' : path.join(base, 'locked', 'out');
  if (!root) fs.mkdirSync(path.dirname(unwritable), { mode: 0o555 });
  const train = (out: string, dataArg = data) => ['train', '--model', model, '--data', dataArg, '--out', out, ...common];
  const cases: Array<{ name: string; args: string[]; message: RegExp }> = [
    { name: 'train --out naming a file', args: train(aFile), message: /--out .*a-file\.txt is a file; give a directory/ },
    { name: 'train --out inside a file', args: train(path.join(aFile, 'run')), message: /a-file\.txt is a file, not a folder/ },
    { name: 'train --out with a name over 255 bytes', args: train(longName), message: /the name '.*' is \d+ bytes long, over the system's limit of 255/ },
    { name: 'train --out with a path over 4096 bytes', args: train(longPath), message: /--out: the path is \d+ bytes long, over the system's limit of 4096/ },
    { name: 'train --out under an unwritable folder', args: train(unwritable), message: /--out .*: cannot create it, the folder .* is not writable/ },
    { name: 'merge --out naming a file', args: ['merge', '--model', model, '--adapter', model, '--out', aFile], message: /--out .*a-file\.txt is a file/ },
    { name: 'train --data naming a directory', args: train(tempOut(), base), message: /cannot read .*: it is a directory, not a data file/ },
    { name: 'augment --out naming a directory', args: ['augment', '--in', data, '--out', base, '--strategy', 'repeat'], message: /--out .* is a directory; give a file name/ },
  ];
  for (const c of cases) {
    const result = run(c.args);
    t.ok(result.status === 1 || result.status === 2, `${c.name}: exit ${result.status}`);
    t.match(result.stderr, c.message, `${c.name}: ${result.stderr.trim().split('\n')[0].slice(0, 200)}`);
    t.notMatch(result.stderr, /\n\s+at /, `${c.name}: no stack trace`);
    t.equal(result.stderr.trim().split('\n').filter((l) => !l.startsWith('usage:')).length, 1, `${c.name}: one line`);
  }
  t.equal(fs.readFileSync(aFile, 'utf8'), 'not a directory', 'the file named as --out is untouched');
});

t.test('read-only run directories and checkpoints/ folders', { skip: root ? 'root ignores permission bits' : false }, async (t) => {
  const model = await tinyModelDir(seed + 1);
  const data = dataFile(sampleRecords);
  const readOnly = tempOut();
  fs.mkdirSync(readOnly, { mode: 0o555 });
  const a = run(['train', '--model', model, '--data', data, '--out', readOnly, ...common]);
  t.equal(a.status, 1);
  t.match(a.stderr, /--out .*: the directory is not writable/);
  t.notMatch(a.stderr, /\n\s+at |Unhandled 'error' event/);
  const out = tempOut();
  fs.mkdirSync(path.join(out, 'checkpoints'), { recursive: true, mode: 0o555 });
  const b = run(['train', '--model', model, '--data', data, '--out', out, ...common, '--overwrite', '--keep-checkpoints', '1']);
  t.ok(b.status === 0 || b.status === 1, `exit ${b.status}`);
  t.notMatch(b.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a checkpoint that cannot be saved is a SeqtuneError naming checkpoints/, not a raw system error', async (t) => {
  const out = tempOut();
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'checkpoints'), 'in the way');
  const step = 1 + rng.int(1000);
  const state = { step, data: {}, rng: { seed: 1, offset: 0 }, tokens: 0, losses: [], devLosses: [], configHash: 'x' } as never;
  const w = tensor([1, 2, 3], [3]);
  await t.rejects(saveCheckpoint(out, state, new Map([['w', w]]), { m: new Map([['w', w]]), v: new Map([['w', w]]) }, 2), {
    code: 'ERR_IO',
    message: new RegExp(`checkpoints: cannot save the step-${step} checkpoint: EEXIST`),
  });
  w.dispose();
});

t.test('metrics.jsonl that cannot be opened is a SeqtuneError naming it, not an unhandled stream error', async (t) => {
  const file = path.join(tempOut(), 'missing-folder', 'metrics.jsonl');
  t.throws(() => new RunReporter(file, 10, 1), { code: 'ERR_IO', message: /metrics\.jsonl: cannot open for writing: ENOENT/ });
});

t.test('augment --in /dev/zero stops at the line-length limit with a clear message', { skip: !fs.existsSync('/dev/zero') && 'no /dev/zero' }, async (t) => {
  const out = path.join(path.dirname(tempOut()), 'zero.jsonl');
  const result = run(['augment', '--in', '/dev/zero', '--out', out, '--strategy', 'repeat']);
  t.equal(result.status, 1);
  t.match(result.stderr, /\/dev\/zero:1: the line is longer than 64 MiB, the limit for one record/);
  t.notMatch(result.stderr, /\n\s+at |RangeError/);
  t.notOk(fs.existsSync(out), 'no output written');
});
