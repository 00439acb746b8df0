/**
 * The per-op profiler on the CPU backend: records name the op, its tensors and the path ('cpu');
 * off, nothing is recorded; a training run with --profile writes a Chrome trace whose steps hold
 * the step's ops, whose op spans fit inside wall time measured independently, and prints the
 * tables; SEQTUNE_PROFILE=1 profiles an arbitrary program that exits through process.exit.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { matmul, addInplace } from '../../lib/ops';
import { native } from '../../lib/native';
import { Profiler, startProfiler, stopProfiler } from '../../lib/profiler/session';
import { summarizeStep } from '../../lib/profiler/report';
import { Rng } from '../../lib/rng';
import { randn, sync } from '../../lib/tensor';
import { train } from '../../lib/train/train';
import { testSeed, hostRng } from '../helpers/random';
import { dataFile, sampleRecords, smallConfig, tempOut, tinyModelDir } from '../train/fixtures';

const seed = testSeed();
t.comment(`seed ${seed}`);
const h = hostRng(seed);

t.test('records name the op, its tensors and the cpu path, in queue order; off records nothing', async (t) => {
  const [m, k, n] = [2 + h.int(40), 2 + h.int(40), 2 + h.int(40)];
  const rng = new Rng(seed);
  const a = randn([m, k], { rng });
  const b = randn([k, n], { rng });
  await sync('cpu');
  native().profilerTake(); // anything left by another test
  const p = new Profiler('cpu');
  p.beginStep(1);
  const before = native().profilerNow();
  const c = matmul(a, b);
  addInplace(c, c, 0.5);
  await sync('cpu');
  const step = p.endStep();
  const after = native().profilerNow();
  p.stop();
  t.same(step.records.map((r) => r.op), ['matmul', 'addInplace']);
  const [mm, add] = step.records;
  t.equal(mm.inputs, `f32[${m},${k}] f32[${k},${n}] -`, 'inputs with the omitted bias');
  t.equal(mm.outputs, `f32[${m},${n}]`);
  t.equal(add.outputs, '', 'an in-place op has no outputs');
  for (const r of step.records) {
    t.equal(r.kernels, 'cpu');
    t.equal(r.device, 'cpu');
    t.notOk(r.failed);
    t.equal(r.gpuBeginUs, undefined, 'no GPU span on the CPU');
    t.ok(before <= r.queuedUs && r.queuedUs <= r.hostBeginUs && r.hostBeginUs <= r.hostEndUs && r.hostEndUs <= after, 'queued, begun, ended, in order, inside the step');
  }
  t.ok(mm.hostEndUs <= add.hostBeginUs, 'ops run in queue order');
  const s = summarizeStep(step);
  t.ok(Math.abs(s.opsUs + s.gapsUs + s.outsideUs - s.wallUs) < 1e-6 && s.gapsUs >= 0 && s.outsideUs >= 0);

  // off: nothing recorded, nothing kept
  matmul(a, b);
  await sync('cpu');
  t.same(native().profilerTake('cpu'), [], 'nothing is recorded while off');
});

t.test('a failed op is recorded as failed; ops skipped for a poisoned input are not', async (t) => {
  const rng = new Rng(seed + 1);
  const a = randn([3, 4], { rng });
  native().profilerTake();
  const p = new Profiler('cpu');
  // an index out of range fails on the device thread, not when queued
  const ids = native().fromHost('cpu', 'i32', [2], Int32Array.from([0, 99]));
  const [bad] = native().runOp('embedding', [ids, a.handle], {});
  native().runOp('scale', [bad], { alpha: 2 });
  await sync('cpu').catch(() => undefined);
  p.stop();
  t.same(p.loose.map((r) => [r.op, r.failed]), [['embedding', true]]);
});

t.test('train --profile: tables, and a Chrome trace of each step that fits the measured wall time', async (t) => {
  const model = await tinyModelDir(seed);
  const out = tempOut();
  const steps = 3;
  const config = smallConfig(model, dataFile(sampleRecords), out, { mode: 'lora', maxSteps: steps, seed: seed % 1000 });
  const trace = path.join(out, 'profile.trace.json');
  const lines: string[] = [];
  const stepEnds: number[] = [];
  const started = native().profilerNow();
  await train(config, {
    log: (l) => lines.push(l),
    progress: { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream,
    profile: trace,
    onStep: () => stepEnds.push(native().profilerNow()),
  });
  const log = lines.join('\n');
  t.match(log, /per step/);
  t.match(log, /where a step's time goes \(mean of steps 2-3/);
  t.match(log, /\(gaps between ops\)/);
  t.match(log, /adamw\s+cpu\s+1 /, 'one adamw per step, on the cpu path');

  const doc = JSON.parse(fs.readFileSync(trace, 'utf8'));
  t.ok(Array.isArray(doc.traceEvents), 'trace event format (object form)');
  for (const e of doc.traceEvents) {
    t.ok(['X', 'M'].includes(e.ph) && typeof e.name === 'string' && Number.isInteger(e.pid) && Number.isInteger(e.tid));
    if (e.ph === 'X') t.ok(Number.isFinite(e.ts) && e.dur >= 0);
  }
  const stepEvents = doc.traceEvents.filter((e: { cat?: string }) => e.cat === 'step');
  t.same(stepEvents.map((e: { name: string }) => e.name), ['step 1', 'step 2', 'step 3']);
  const ops = doc.traceEvents.filter((e: { ph: string; cat?: string }) => e.ph === 'X' && e.cat !== 'step');
  t.ok(ops.every((e: { cat: string }) => e.cat === 'cpu'), 'every op ran on the cpu path');
  for (const [i, s] of stepEvents.entries()) {
    const inside = ops.filter((e: { ts: number; dur: number }) => e.ts >= s.ts && e.ts + e.dur <= s.ts + s.dur);
    const names = new Set(inside.map((e: { name: string }) => e.name));
    for (const op of ['adamw', 'gradNorm', 'loraLinear', 'attention', 'attentionBackward']) t.ok(names.has(op), `step ${i + 1} holds ${op}`);
    const busy = inside.reduce((a: number, e: { dur: number }) => a + e.dur, 0);
    // measured independently: from the previous step's report (or the start) to this one's
    const outer = stepEnds[i] - (i === 0 ? started : stepEnds[i - 1]);
    t.ok(busy > 0 && busy <= s.dur && s.dur <= outer, `step ${i + 1}: ops ${busy.toFixed(0)} us <= step ${s.dur.toFixed(0)} us <= measured ${outer.toFixed(0)} us`);
    t.ok(Math.abs(s.args.opsUs - busy) < 1, 'the step summary adds up the same ops');
  }
  t.equal(native().profilerTake().length, 0, 'the profiler stopped with the run');
});

t.test('SEQTUNE_PROFILE=1 profiles an arbitrary program, even one that calls process.exit', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-profile-'));
  const [m, k, n] = [1 + h.int(30), 1 + h.int(30), 1 + h.int(30)];
  const child = spawnSync(process.execPath, [...process.execArgv, path.join(__dirname, 'profile-child.ts'), String(m), String(k), String(n)], {
    cwd: dir,
    env: { ...process.env, SEQTUNE_PROFILE: '1' },
    encoding: 'utf8',
  });
  t.equal(child.status, 0, child.stderr);
  const files = fs.readdirSync(dir).filter((f) => /^seqtune-profile-\d+\.json$/.test(f));
  t.equal(files.length, 1, 'trace written in the working directory');
  const doc = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
  const ops = doc.traceEvents.filter((e: { ph: string }) => e.ph === 'X');
  const mm = ops.find((e: { name: string }) => e.name === 'matmul');
  t.ok(mm, 'the matmul is in the trace');
  t.equal(mm.args.inputs, `f32[${m},${k}] f32[${k},${n}] -`);
  t.ok(ops.some((e: { name: string }) => e.name === 'add'));
  t.match(child.stderr, /ops outside training steps/);
  t.match(child.stderr, /matmul\s+cpu\s+1 /);
});

t.test('one process-wide profiler at a time', async (t) => {
  startProfiler('cpu');
  t.throws(() => startProfiler('cpu'), /already running/);
  t.ok(stopProfiler());
  t.equal(stopProfiler(), undefined);
});
