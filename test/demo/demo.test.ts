import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { demoCommand } from '../../lib/cli/demo';
import { parseCommandArgs } from '../../lib/cli/command';
import { formatTable, runDemo } from '../../lib/demo';
import { DemoItem } from '../../lib/demo/data';
import { followedAnyFormat, scoreOutput } from '../../lib/demo/score';

const keys = (o: object) => Object.keys(o).sort();
const jsonl = async (file: string) => (await fs.readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
const isRate = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 1;

t.test('--quick runs end to end quickly and writes the report, per-item results and a picture', async (t) => {
  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'seqtune-demo-'));
  t.teardown(() => fs.rm(out, { recursive: true, force: true }));
  const { values } = parseCommandArgs(demoCommand, ['--quick', '--out', out, '--seed', '3']);
  const started = Date.now();
  const print = t.capture(console, 'log');
  const quiet = t.capture(process.stderr, 'write');
  t.equal(await demoCommand.run(values, []), 0);
  const seconds = (Date.now() - started) / 1000;
  t.ok(seconds < 60, `finished in ${seconds.toFixed(1)} s`);
  t.ok(quiet().length > 0, 'progress went to stderr');
  t.match(print()[0].args[0], /^split +n +EM IT +EM SIT/);

  const report = JSON.parse(await fs.readFile(path.join(out, 'report.json'), 'utf8'));
  t.same(keys(report), ['command', 'device', 'models', 'params', 'preset', 'seed', 'splits', 'tokenBudget', 'version', 'wallSeconds'].sort());
  t.equal(report.command, `seqtune demo --quick --out ${out} --seed 3`);
  t.equal(report.seed, 3);
  t.equal(report.device, 'cpu');
  t.equal(report.preset, 'quick');
  t.ok(Number.isInteger(report.params) && report.params > 0);
  t.ok(report.wallSeconds > 0 && report.wallSeconds <= seconds);
  t.same(keys(report.models), ['it', 'sit']);
  for (const m of ['it', 'sit']) {
    t.same(keys(report.models[m]), ['finalLoss', 'trainTokens']);
    // same budget: each model's data stops within one example of it
    t.ok(report.models[m].trainTokens <= report.tokenBudget && report.models[m].trainTokens > report.tokenBudget - 400, `${m} tokens`);
    t.ok(Number.isFinite(report.models[m].finalLoss));
  }
  t.same(report.splits.map((s: { name: string }) => s.name), ['single', 'chain2-unseen', 'chain3-unseen', 'chain3-seen', 'decode-seen']);
  const metrics = ['exactMatch', 'followingAnyFormat', 'followingRate'];
  for (const s of report.splits) {
    t.same(keys(s), ['diff', 'it', 'n', 'name', 'sit']);
    t.same(keys(s.it), metrics);
    t.same(keys(s.diff), ['ci95', ...metrics]);
    t.same(keys(s.diff.ci95), metrics);
    for (const metric of metrics) {
      t.ok(isRate(s.it[metric]) && isRate(s.sit[metric]));
      t.ok(Math.abs(s.diff[metric] - (s.sit[metric] - s.it[metric])) < 1e-12, 'diff = SIT - IT');
      const [lo, hi] = s.diff.ci95[metric];
      t.ok(lo <= s.diff[metric] + 1e-12 && s.diff[metric] <= hi + 1e-12, `${s.name} ${metric}: CI holds the difference`);
    }
    t.equal(s.n, 24);

    // per item: the eval format, and scores that the scorer gives again for the stored output
    const items: DemoItem[] = await jsonl(path.join(out, s.name, 'items.jsonl'));
    t.equal(items.length, 24);
    for (const model of ['it', 'sit'] as const) {
      const results = await jsonl(path.join(out, s.name, model, 'results.jsonl'));
      t.same(results.map((r) => r.id), items.map((i) => i.id));
      const correct = results.filter((record, k) => {
        t.same(keys(record), ['correct', 'extracted', 'followed', 'gold', 'group', 'id', 'output', 'prompt']);
        const again = scoreOutput(items[k], record.output);
        t.same([record.extracted, record.correct, record.followed], [again.extracted, again.correct, again.followed]);
        t.match(record.prompt, /^<\|user\|>\n.*\n<\|assistant\|>\n$/s);
        return record.correct;
      }).length;
      t.equal(correct / items.length, s[model].exactMatch, `${s.name} ${model} exact match from the per-item file`);
      const free = results.filter((record, k) => followedAnyFormat(items[k].steps, record.output)).length;
      t.equal(free / items.length, s[model].followingAnyFormat, `${s.name} ${model} format-free following from the per-item file`);
    }
  }
  const svg = await fs.readFile(path.join(out, 'demo.svg'), 'utf8');
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.ok(svg.trimEnd().endsWith('</svg>'));
  for (const s of report.splits) t.ok(svg.includes(`${s.name} (n=24)`));
});

t.test('the same seed gives the same table and outputs, in workers or not; a rerun replaces the old outputs', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'seqtune-demo-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const run = (out: string, seed: number, jobs = 2) => runDemo({ quick: true, items: 12, out: path.join(dir, out), seed, jobs });
  const a = await run('a', 11);
  // in turn in this process, with the default op threads: the same numbers
  const b = await run('b', 11, 1);
  t.equal(formatTable(b), formatTable(a));
  t.same(b.splits, a.splits);
  t.same(b.models, a.models);
  const outputs = async (out: string) => fs.readFile(path.join(dir, out, 'chain3-seen', 'sit', 'results.jsonl'), 'utf8');
  t.equal(await outputs('b'), await outputs('a'), 'identical generations');
  // into the same folder with another seed: nothing of the first run is resumed
  const c = await run('a', 12);
  t.notSame(c.models, a.models);
  t.not(await outputs('a'), await outputs('b'));
});

t.test('bad options are one clear error', async (t) => {
  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'seqtune-demo-'));
  t.teardown(() => fs.rm(out, { recursive: true, force: true }));
  await t.rejects(runDemo({ out, quick: true, preset: 'huge' }), /unknown demo preset 'huge'/);
  await t.rejects(runDemo({ out, quick: true, tokenBudget: 0 }), /tokenBudget must be a positive integer/);
  await t.rejects(runDemo({ out, quick: true, unseenTasks: ['fly'] }), /unknown demo task 'fly'/);
  await t.rejects(runDemo({ out, quick: true, seqFraction: 2 }), /seqFraction must be in/);
  await t.rejects(runDemo({ out, quick: true, items: 0 }), /items must be a positive integer/);
  await t.rejects(runDemo({ out, quick: true, jobs: 3 }), /jobs must be 1 or 2/);
  await t.rejects(runDemo({ out, quick: true, tokenBudget: 10 }), /holds no training example/);
  const { values } = parseCommandArgs(demoCommand, ['--words', '2-x']);
  await t.rejects(demoCommand.run(values, []), /--words must be N or MIN-MAX/);
});
