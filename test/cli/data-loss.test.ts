/**
 * The commands that used to lose or corrupt a user's data, run as a user runs them (the compiled
 * CLI in a child process). Each case checks the bytes of the input, or of the earlier run, after
 * the command: refused means untouched, not merely "exit code non-zero".
 */
import t from 'tap';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startFakeLlm } from '../data/fake-llm';
import { hostRng, testSeed } from '../helpers/random';
import { cliPath, dataFile, quickTrainFlags, sampleRecords, tempOut, tinyModelDir } from '../train/fixtures';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

function run(args: string[]) {
  return spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8' });
}

/** Every file under `dir` (or the file itself) with its bytes' hash: a snapshot to compare. */
function snapshot(target: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string) => {
    const stat = fs.statSync(p);
    if (stat.isDirectory()) for (const name of fs.readdirSync(p).sort()) walk(path.join(p, name), path.join(rel, name));
    else out[rel || '.'] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  };
  walk(target, '');
  return out;
}

function randomRecords(n: number) {
  return Array.from({ length: n }, (_, i) => ({ instruction: `Task ${i} ${rng.int(1e6)}`, input: `text ${rng.int(1e6)}`, output: `answer ${i}` }));
}

t.test('compiled CLI is present', async (t) => {
  t.ok(fs.existsSync(cliPath), `${cliPath} exists (npm install compiles it)`);
});

t.test('augment --in F --out F leaves F as it was, with or without --overwrite', async (t) => {
  const file = dataFile(randomRecords(20 + rng.int(20)));
  const before = snapshot(file);
  for (const extra of [[], ['--overwrite']]) {
    const result = run(['augment', '--in', file, '--out', file, '--strategy', 'repeat', '--fraction', '0.5', ...extra]);
    t.equal(result.status, 2, `refused ${extra.join(' ')}`);
    t.match(result.stderr, /would overwrite the input --in/);
    t.same(snapshot(file), before, 'the input bytes are unchanged');
  }
  // the same file through another name (a hard link) is the same input
  const link = path.join(path.dirname(file), 'link.jsonl');
  fs.linkSync(file, link);
  const linked = run(['augment', '--in', file, '--out', link, '--strategy', 'repeat']);
  t.equal(linked.status, 2, 'a hard link to the input is refused too');
  t.same(snapshot(file), before);
});

t.test('augment against a refusing or garbage-returning endpoint leaves no partial output, and an earlier output intact', async (t) => {
  const file = dataFile(randomRecords(40));
  const out = path.join(path.dirname(file), 'para.jsonl');
  const earlier = `${JSON.stringify({ instruction: 'earlier run', input: '', output: 'kept' })}\n`;
  fs.writeFileSync(out, earlier);
  const failAfter = 3 + rng.int(5);
  for (const kind of ['garbage', 'refused']) {
    const server = await startFakeLlm((_req, n) => (n < failAfter ? { content: 'A paraphrase.' } : kind === 'garbage' ? { status: 200, raw: 'not json at all' } : { status: 500, raw: 'down' }));
    const url = server.url;
    if (kind === 'refused') await server.close();
    try {
      const result = await promisify(execFile)(
        process.execPath,
        [cliPath, 'augment', '--in', file, '--out', out, '--strategy', 'paraphrase', '--fraction', '1', '--endpoint', url, '--model', 'm', '--retries', '0', '--timeout-ms', '5000', '--concurrency', '1'],
        { encoding: 'utf8' },
      ).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      t.equal(result.code, 1, `${kind}: exit 1 (${result.stderr.trim().split('\n')[0]})`);
      t.notMatch(result.stderr, /\n\s+at /, `${kind}: no stack trace`);
      t.equal(fs.readFileSync(out, 'utf8'), earlier, `${kind}: the earlier output is byte for byte intact`);
      t.same(fs.readdirSync(path.dirname(out)).filter((n) => n.includes('partial')), [], `${kind}: no temporary left behind`);
    } finally {
      if (kind !== 'refused') await server.close();
    }
  }
});

t.test('merge never writes onto its base model, and refuses a non-empty --out unless --overwrite', async (t) => {
  const model = await tinyModelDir(seed + 3);
  const data = dataFile(sampleRecords);
  const runOut = tempOut();
  const trained = run(['train', '--model', model, '--data', data, '--out', runOut, '--max-steps', '2', ...quickTrainFlags]);
  t.equal(trained.status, 0, trained.stderr.slice(-300));
  const adapter = path.join(runOut, 'adapter');
  const modelBefore = snapshot(model);
  const adapterBefore = snapshot(adapter);
  for (const target of [model, adapter]) {
    for (const extra of [[], ['--overwrite']]) {
      const result = run(['merge', '--model', model, '--adapter', adapter, '--out', target, ...extra]);
      t.equal(result.status, 2, `--out ${path.basename(target)} ${extra.join(' ')}: refused`);
      t.match(result.stderr, /would overwrite the input/);
    }
  }
  t.same(snapshot(model), modelBefore, 'the base model bytes are unchanged');
  t.same(snapshot(adapter), adapterBefore, 'the adapter bytes are unchanged');

  const busy = path.join(tempOut(), 'merged');
  fs.mkdirSync(busy, { recursive: true });
  fs.writeFileSync(path.join(busy, 'notes.txt'), 'mine');
  const refused = run(['merge', '--model', model, '--adapter', adapter, '--out', busy]);
  t.equal(refused.status, 2);
  t.match(refused.stderr, /is not empty \(notes\.txt\); give --overwrite to replace it/);
  t.same(snapshot(busy), { 'notes.txt': createHash('sha256').update('mine').digest('hex') }, 'the directory is untouched');
  const replaced = run(['merge', '--model', model, '--adapter', adapter, '--out', busy, '--overwrite']);
  t.equal(replaced.status, 0, replaced.stderr);
  const files = fs.readdirSync(busy).sort();
  t.notOk(files.includes('notes.txt'), '--overwrite replaces the directory, no mix of old and new files');
  t.ok(files.includes('config.json') && files.some((f) => f.endsWith('.safetensors')), `a whole model: ${files.join(', ')}`);
  t.same(fs.readdirSync(path.dirname(busy)), ['merged'], 'no temporary directory left beside it');
});

t.test('train into an existing run directory is refused without --resume/--overwrite; --overwrite starts clean', async (t) => {
  const model = await tinyModelDir(seed + 4);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  const first = run(['train', '--model', model, '--data', data, '--out', out, '--max-steps', '3', '--save-every', '1', '--keep-checkpoints', '3', ...quickTrainFlags]);
  t.equal(first.status, 0, first.stderr.slice(-300));
  const before = snapshot(out);
  const again = run(['train', '--model', model, '--data', data, '--out', out, '--max-steps', '2', '--save-every', '1', ...quickTrainFlags]);
  t.equal(again.status, 2);
  t.match(again.stderr, /--out .* is not empty .*--resume .* to continue the run there, or --overwrite to replace it/);
  t.same(snapshot(out), before, 'the earlier run is byte for byte intact');

  const replaced = run(['train', '--model', model, '--data', data, '--out', out, '--max-steps', '2', '--save-every', '1', '--keep-checkpoints', '3', '--overwrite', ...quickTrainFlags]);
  t.equal(replaced.status, 0, replaced.stderr.slice(-300));
  t.same(fs.readdirSync(path.join(out, 'checkpoints')).sort(), ['step-000001', 'step-000002'], 'only the new run\'s checkpoints');
  const steps = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
  t.same(steps, [1, 2], 'metrics.jsonl holds the new run only');
  t.notOk(fs.existsSync(path.join(out, '.seqtune.lock')), 'the lock is released');
});

t.test('two trains on one --out: the second is refused while the first runs; a dead holder\'s lock is taken over', async (t) => {
  const model = await tinyModelDir(seed + 5);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  const firstArgs = ['train', '--model', model, '--data', data, '--out', out, '--max-steps', '100000', '--save-every', '1000', ...quickTrainFlags];
  const first = spawn(process.execPath, [cliPath, ...firstArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  first.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => first.on('exit', (code) => resolve(code)));
  const start = Date.now();
  while ((stderr.match(/^step \d+\//gm) ?? []).length < 2) {
    if (Date.now() - start > 60_000) throw new Error(`the first run did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const second = run(['train', '--model', model, '--data', data, '--out', out, '--max-steps', '5', '--resume', out, ...quickTrainFlags]);
  t.equal(second.status, 1, 'refused');
  t.match(second.stderr, new RegExp(`in use by another seqtune train \\(pid ${first.pid} `), second.stderr.trim());
  t.notMatch(second.stderr, /\n\s+at /, 'no stack trace');
  first.kill('SIGINT');
  t.equal(await exited, 130);
  const steps = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
  t.same(steps, steps.map((_, i) => i + 1), 'metrics.jsonl holds one run\'s steps, in order');

  // a lock left by a process that no longer runs is stale
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const crashed = tempOut();
  fs.mkdirSync(crashed, { recursive: true });
  fs.writeFileSync(path.join(crashed, '.seqtune.lock'), JSON.stringify({ pid: Number(dead.stdout), host: os.hostname(), started: new Date().toISOString(), command: 'train' }));
  const takeover = run(['train', '--model', model, '--data', data, '--out', crashed, '--max-steps', '2', '--overwrite', ...quickTrainFlags]);
  t.equal(takeover.status, 0, `a dead holder's lock does not block: ${takeover.stderr.slice(-300)}`);
  t.notOk(fs.existsSync(path.join(crashed, '.seqtune.lock')), 'and the new lock is released');
});
