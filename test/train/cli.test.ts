/**
 * `seqtune train` as a user runs it (the compiled CLI in a child process): Ctrl-C saves and exits
 * cleanly, SIGKILL at any moment leaves a loadable checkpoint, and bad configurations give one
 * clear message, a non-zero exit and no stack trace.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listCheckpoints, loadCheckpoint } from '../../lib/train/checkpoint';
import { hostRng, testSeed } from '../helpers/random';
import { cliPath, dataFile, quickTrainFlags, sampleRecords, tempOut, tinyModelDir } from './fixtures';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

function startTrain(args: string[]) {
  const child = spawn(process.execPath, [cliPath, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => (stdout += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const stepsSeen = () => (stderr.match(/^step \d+\//gm) ?? []).length;
  return { child, exited, stepsSeen, output: () => ({ stderr, stdout }) };
}

async function until(condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A long run on a fresh tiny model, stopped by `signal` once it has logged three steps. */
async function stoppedRun(modelSeed: number, signal: NodeJS.Signals) {
  const model = await tinyModelDir(modelSeed);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  const run = startTrain(['--model', model, '--data', data, '--out', out, '--max-steps', '400', '--save-every', '1000', ...quickTrainFlags]);
  await until(() => run.stepsSeen() >= 3);
  run.child.kill(signal);
  const { code } = await run.exited;
  return { model, data, out, run, code };
}

t.test('compiled CLI is present', async (t) => {
  t.ok(fs.existsSync(cliPath), `${cliPath} exists (npm install compiles it)`);
});

t.test('Ctrl-C saves a checkpoint and exits cleanly; --resume finishes the run', async (t) => {
  const { model, data, out, run, code } = await stoppedRun(seed, 'SIGINT');
  t.equal(code, 130, 'exit code 130 after an interrupt');
  t.match(run.output().stderr, /--resume/, 'says how to continue');
  t.notMatch(run.output().stderr, /\n\s+at /, 'no stack trace');
  const saved = await listCheckpoints(out);
  t.equal(saved.length, 1, 'one checkpoint written on interrupt');
  const resumed = spawnSync(process.execPath, [cliPath, 'train', '--model', model, '--data', data, '--out', out, '--max-steps', '400', '--save-every', '1000', ...quickTrainFlags, '--resume', out], {
    encoding: 'utf8',
  });
  t.equal(resumed.status, 0, resumed.stderr.slice(-300));
  t.ok(fs.existsSync(path.join(out, 'adapter', 'adapter_model.safetensors')), 'the run finished and saved its adapter');
});

t.test('SIGKILL at random moments always leaves a loadable checkpoint; the next start removes the temporaries and metrics never repeat a step', async (t) => {
  const model = await tinyModelDir(seed + 1);
  const data = dataFile(sampleRecords);
  const out = tempOut();
  const args = ['--model', model, '--data', data, '--out', out, '--max-steps', '100000', '--save-every', '1', '--keep-checkpoints', '2', ...quickTrainFlags];
  const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  const temporaries = () => [
    ...fs.readdirSync(path.join(out, 'checkpoints')).filter((n) => n.startsWith('.')),
    ...fs.readdirSync(out).filter((n) => n.endsWith('.tmp')),
  ];
  for (let round = 0; round < 4; round++) {
    const run = startTrain(round === 0 ? args : [...args, '--resume', out]);
    await until(() => run.stepsSeen() >= 2);
    if (round > 0) {
      const left = temporaries().filter((n) => !n.includes(String(run.child.pid)));
      t.same(left, [], `round ${round}: no temporaries of killed runs after the start`);
    }
    await new Promise((r) => setTimeout(r, rng.int(400)));
    if (round === 3) {
      run.child.kill('SIGINT');
      t.equal((await run.exited).code, 130);
      t.same(temporaries(), [], 'after a clean stop: no temporaries at all');
      break;
    }
    run.child.kill('SIGKILL');
    await run.exited;
    const saved = await listCheckpoints(out);
    t.ok(saved.length >= 1 && saved.length <= 3, `round ${round}: ${saved.length} checkpoints after the kill`);
    const loaded = await loadCheckpoint(out, 'cpu');
    t.equal(loaded.state.step, saved[saved.length - 1].step, `round ${round}: the latest checkpoint (step ${loaded.state.step}) loads`);
    t.ok(loaded.trainable.size > 0 && loaded.m.size === loaded.trainable.size);
    // what a kill in the middle of a save leaves: a checkpoint directory and a file being written
    fs.mkdirSync(path.join(out, 'checkpoints', `.tmp-step-${String(loaded.state.step + 1).padStart(6, '0')}-${dead}`, 'x'), { recursive: true });
    fs.writeFileSync(path.join(out, `.summary.json.${dead}.0badc0de.tmp`), '{"half');
  }
  const steps = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  t.same(steps, steps.map((_, i) => i + 1), `metrics.jsonl: steps 1..${steps.length}, each once, after three kills and resumes`);
});

t.test('SIGTERM (a scheduler\'s stop) saves a checkpoint like Ctrl-C', async (t) => {
  const { out, run, code } = await stoppedRun(seed + 3, 'SIGTERM');
  t.equal(code, 143, 'exit code 143 after saving');
  t.match(run.output().stderr, /terminated: finishing this step and saving a checkpoint/);
  t.match(run.output().stderr, /--resume/, 'says how to continue');
  const saved = await listCheckpoints(out);
  t.equal(saved.length, 1, 'a checkpoint was written');
  t.ok(saved[0].step >= 3, `at step ${saved[0].step}`);
});

t.test('bad configurations: one clear message, non-zero exit, no stack trace', async (t) => {
  const model = await tinyModelDir(seed + 2);
  const data = dataFile(sampleRecords);
  const badConfig = path.join(path.dirname(data), 'bad.json');
  fs.writeFileSync(badConfig, JSON.stringify({ optimizer: { learningRate: 1 } }));
  const cases: Array<{ name: string; args: string[]; code: number; message: RegExp }> = [
    { name: 'unknown flag', args: ['--model', model, '--data', data, '--out', tempOut(), '--learning-rate', '1'], code: 2, message: /Unknown option '--learning-rate'/ },
    { name: 'missing data file', args: ['--model', model, '--data', '/nonexistent/data.jsonl', '--out', tempOut()], code: 1, message: /\/nonexistent\/data\.jsonl/ },
    { name: 'wrong type', args: ['--model', model, '--data', data, '--out', tempOut(), '--lr', 'fast'], code: 2, message: /--lr must be a number/ },
    { name: 'out of range', args: ['--model', model, '--data', data, '--out', tempOut(), '--lora-dropout', '1.5'], code: 1, message: /lora\.dropout must be in \[0, 1\)/ },
    { name: 'unknown config field', args: ['--model', model, '--data', data, '--out', tempOut(), '--config', badConfig], code: 1, message: /unknown field 'optimizer\.learningRate'/ },
    { name: 'missing model', args: ['--model', '/nonexistent/model', '--data', data, '--out', tempOut()], code: 1, message: /\/nonexistent\/model/ },
    { name: 'no --model', args: ['--data', data, '--out', tempOut()], code: 1, message: /model must be a model directory/ },
  ];
  for (const c of cases) {
    const result = spawnSync(process.execPath, [cliPath, 'train', ...c.args, '--device', 'cpu'], { encoding: 'utf8' });
    t.equal(result.status, c.code, `${c.name}: exit code ${c.code}`);
    t.match(result.stderr, c.message, `${c.name}: ${result.stderr.trim().split('\n')[0]}`);
    t.notMatch(result.stderr, /\n\s+at /, `${c.name}: no stack trace`);
  }
});
