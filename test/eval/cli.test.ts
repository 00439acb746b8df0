/**
 * `seqtune eval` end to end through its Command: scoring predictions, generating with an injected
 * generator (and resuming), compare, the judge flags, and one-line errors for bad usage.
 */
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandArgs } from '../../lib/cli/command';
import { evalCommand, generatorFromModule, makeEvalCommand } from '../../lib/cli/eval';
import { Generator } from '../../lib/eval/generator';
import { FakeJudge } from './fake-judge';
import { FakeGenerator, writeXquad, xquadOutput } from './fixtures';

async function run(args: string[], command = evalCommand): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const write = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  process.stderr.write = ((chunk: string) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const { values, positionals } = parseCommandArgs(command, args);
    const code = await command.run(values, positionals);
    return { code, out: out.join('\n'), err: err.join('') };
  } finally {
    console.log = log;
    process.stderr.write = write;
  }
}

function predictions(dir: string): string {
  const file = join(dir, 'p.jsonl');
  writeFileSync(file, [0, 1, 2, 3, 4, 5, 6].map((i) => JSON.stringify({ id: i, output: xquadOutput(i) })).join('\n'));
  return file;
}

t.test('scores a predictions file and prints the table (or JSON)', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const p = predictions(dir);
  const r = await run(['--bench', 'xquad', '--data', data, '--predictions', p, '--out', join(dir, 'o')]);
  t.equal(r.code, 0);
  t.match(r.out, /overall\s+7\s+0\s+71\.4\s+71\.4\s+42\.9/);
  t.match(r.out, /avg trans: accuracy 71\.4, follow 71\.4, acc\+follow 42\.9 over vi \(missing: ar, el, hi, th, tr\)/);
  t.ok(existsSync(join(dir, 'o/results.jsonl')) && existsSync(join(dir, 'o/summary.json')));
  const json = await run(['--bench', 'xquad', '--data', data, '--predictions', p, '--json']);
  t.same(JSON.parse(json.out).summary.overall, { n: 7, empty: 0, accuracy: 5 / 7, followRate: 5 / 7, correctAndFollowedRate: 3 / 7 });
  t.equal(JSON.parse(json.out).outDir, null, 'without --out nothing is written');
});

t.test('generates through the injected loader, resumes, and compares two runs', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const loads: unknown[][] = [];
  let gen = new FakeGenerator();
  const command = makeEvalCommand((model, adapter, device) => {
    loads.push([model, adapter, device]);
    return gen;
  });
  const a = join(dir, 'A');
  const first = await run(['--model', 'm', '--bench', 'xquad', '--data', data, '--out', a, '--limit', '5', '--batch-size', '2', '--max-new-tokens', '64'], command);
  t.equal(first.code, 0);
  t.same(loads[0], ['m', undefined, undefined]);
  t.same(gen.calls.map((c) => c.prompts.length), [2, 2, 1]);
  t.equal(gen.calls[0].options.maxNewTokens, 64);
  t.match(first.err, /5\/5 items/);
  if (!process.stderr.isTTY) t.equal(first.err, '0/5 items\n2/5 items\n4/5 items\n5/5 items\n', 'in a log: whole lines, no \\r');
  t.match(first.out, /overall\s+5 /);

  gen = new FakeGenerator();
  const again = await run(['--model', 'm', '--adapter', 'ad', '--device', 'cpu', '--bench', 'xquad', '--data', data, '--out', a, '--batch-size', '2', '--max-new-tokens', '64'], command);
  t.same(loads[1], ['m', 'ad', 'cpu']);
  t.match(again.err, /\(5 resumed from /);
  t.equal(gen.prompts.length, 2, 'only the two items past the old limit');

  // run B answers everything correctly with a marker
  gen = new FakeGenerator((p) => `Result: ${['Denver Broncos', 'Carolina', '308', 'Levi Stadium', 'Santa Clara', 'CBS', 'Super Bowl 50'][Number(/q(\d+)/.exec(p)![1])]}`);
  await run(['--model', 'm', '--bench', 'xquad', '--data', data, '--out', join(dir, 'B'), '--max-new-tokens', '64'], command);
  const cmp = await run(['compare', a, join(dir, 'B'), '--samples', '200']);
  t.match(cmp.out, /7 paired items/);
  t.match(cmp.out, /overall\s+accuracy\s+7\s+71\.4\s+100\.0\s+\+28\.6/);
  t.match(cmp.out, /overall\s+followRate\s+7\s+71\.4\s+100\.0\s+\+28\.6/);
  const cmpJson = JSON.parse((await run(['compare', a, join(dir, 'B'), '--samples', '200', '--json'])).out);
  t.equal(cmpJson.samples, 200);
});

t.test('the default output folder is eval-runs/<bench>-<data name>[-<mode>]', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const cwd = process.cwd();
  process.chdir(dir);
  t.teardown(() => process.chdir(cwd));
  const command = makeEvalCommand(() => new FakeGenerator());
  await run(['--model', 'm', '--bench', 'xquad', '--data', data], command);
  t.ok(existsSync(join(dir, 'eval-runs/xquad-xquad_trans_vi/results.jsonl')));
});

t.test('without a model module, generation fails with a clear error; --predictions still works', async (t) => {
  const missing = generatorFromModule('../model/no-such-generator-module');
  t.throws(() => missing('m', undefined, undefined), { code: 'ERR_NOT_IMPLEMENTED', message: /generation from a model is not available in this build/ });
  t.throws(() => generatorFromModule('../errors')('m', undefined, undefined), { code: 'ERR_INTERNAL', message: /does not export createGenerator/ });
  const dir = t.testdir({});
  const data = writeXquad(dir);
  await t.rejects(run(['--model', 'm', '--bench', 'xquad', '--data', data, '--out', join(dir, 'o')], makeEvalCommand(missing)), { code: 'ERR_NOT_IMPLEMENTED' });
  t.equal((await run(['--bench', 'xquad', '--data', data, '--predictions', predictions(dir)], makeEvalCommand(missing))).code, 0);
});

t.test('SeqEval with the judge flags, through the CLI', async (t) => {
  const server = new FakeJudge();
  const endpoint = await server.start();
  t.teardown(() => server.stop());
  const dir = t.testdir({
    'seq.json': JSON.stringify([{ instruction: '[followed] a then b', iteration: 1 }, { instruction: '[not-followed] c then d', iteration: 2 }]),
    'p.jsonl': '{"id": 0, "output": "x"}\n{"id": 1, "output": "y"}\n',
  });
  const base = ['--bench', 'seqeval', '--data', join(dir, 'seq.json'), '--predictions', join(dir, 'p.jsonl')];
  const judged = await run([...base, '--out', join(dir, 'o'), '--judge-endpoint', endpoint, '--judge-model', 'jm', '--judge-concurrency', '2', '--judge-retries', '1', '--judge-timeout', '5']);
  t.match(judged.out, /overall\s+following rate 50\.0% of judged \(50\.0% of all 2\)/);
  t.match(judged.err, /judged 2\/2\n/);
  t.ok(existsSync(join(dir, 'o/judge.jsonl')));
  t.match((await run(base)).out, /following rate: not judged/);
  await t.rejects(run([...base, '--judge-endpoint', endpoint, '--judge-model', 'jm']), { code: 'ERR_ARGUMENT', message: /--out DIR is needed/ });

  const gen: Generator = { generate: async (prompts) => prompts.map(() => 'done') };
  const viaModel = await run(['--model', 'm', '--bench', 'seqeval', '--data', join(dir, 'seq.json'), '--out', join(dir, 'g'), '--judge-endpoint', endpoint, '--judge-model', 'jm', '--json'], makeEvalCommand(() => gen));
  const parsed = JSON.parse(viaModel.out);
  t.equal(parsed.judge.follow.overall.followed, 1);
  t.equal(JSON.parse(readFileSync(join(dir, 'g/run.json'), 'utf8')).maxNewTokens, 2048, "SeqEval's 2048-token budget");
});

t.test('SeqEval: when every judge request fails, eval exits 1 and says so', async (t) => {
  const dir = t.testdir({
    'seq.json': JSON.stringify([{ instruction: 'a then b', iteration: 1 }, { instruction: 'c then d', iteration: 2 }]),
    'p.jsonl': '{"id": 0, "output": "x"}\n{"id": 1, "output": "y"}\n',
  });
  const server = new FakeJudge();
  const endpoint = await server.start();
  await server.stop(); // a refused connection for every request
  const r = await run(['--bench', 'seqeval', '--data', join(dir, 'seq.json'), '--predictions', join(dir, 'p.jsonl'), '--out', join(dir, 'o'), '--judge-endpoint', endpoint, '--judge-model', 'jm', '--judge-retries', '0', '--judge-timeout', '5']);
  t.equal(r.code, 1);
  t.match(r.err, /every judge request failed \(2 errors, 0 timeouts of 2 items\)/);
});

t.test('bad usage is a one-line argument error', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const p = predictions(dir);
  const bad: [string[], RegExp][] = [
    [['--data', data, '--predictions', p], /--bench is required/],
    [['--bench', 'xquad', '--predictions', p], /--data is required/],
    [['--bench', 'xquad', '--data', data], /give either --model or --predictions/],
    [['--bench', 'xquad', '--data', data, '--model', 'm', '--predictions', p], /give either --model or --predictions/],
    [['--bench', 'xquad', '--data', data, '--predictions', p, '--mode', 'cot-en'], /--mode applies to --bench mgsm only/],
    [['--bench', 'xquad', '--data', data, '--predictions', p, '--exemplars', 'x'], /--exemplars applies to --bench gsm8k and mgsm only/],
    [['--bench', 'xquad', '--data', data, '--predictions', p, '--judge-endpoint', 'http://x'], /--judge-endpoint applies to --bench seqeval only/],
    [['--bench', 'seqeval', '--data', data, '--predictions', p, '--reference', 'r'], /--reference needs --judge-endpoint/],
    [['--bench', 'xquad', '--data', data, '--predictions', p, '--limit', 'abc'], /--limit must be a number/],
    [['--bench', 'xquad', '--data', data, '--predictions', p, '--limit=-1'], /--limit must be a non-negative integer/],
    [['--bench', 'xquad', '--data', data, '--model', 'm', '--template', 'chatml'], /unknown template 'chatml'/],
    [['--bench', 'nope', '--data', data, '--predictions', p], /unknown bench 'nope'/],
    [['extra', '--bench', 'xquad'], /unexpected argument 'extra'/],
    [['compare', 'only-one'], /compare takes two run folders/],
  ];
  for (const [args, message] of bad) await t.rejects(run(args, makeEvalCommand(() => new FakeGenerator())), { code: 'ERR_ARGUMENT', message }, args.join(' '));
  t.throws(() => parseCommandArgs(evalCommand, ['--no-such-flag']), { code: 'ERR_ARGUMENT' });
});

t.test('without --template, eval uses the template the adapter (or model) was trained with', async (t) => {
  const dir = t.testdir({ adapter: { 'seqtune.json': JSON.stringify({ template: 'alpaca' }) }, chat: { 'seqtune.json': JSON.stringify({ template: 'chat' }) } });
  const data = writeXquad(dir);
  let gen = new FakeGenerator();
  const command = makeEvalCommand(() => gen);
  await run(['--model', 'm', '--adapter', join(dir, 'adapter'), '--bench', 'xquad', '--data', data, '--out', join(dir, 'a'), '--limit', '1'], command);
  t.match(gen.prompts[0], /^Below is an instruction that describes a task\./, 'the Alpaca template the adapter records');
  gen = new FakeGenerator();
  await run(['--model', join(dir, 'adapter'), '--bench', 'xquad', '--data', data, '--out', join(dir, 'b'), '--limit', '1'], command);
  t.match(gen.prompts[0], /^Below is an instruction/, 'a trained model directory records it too');
  gen = new FakeGenerator();
  await run(['--model', 'm', '--adapter', join(dir, 'adapter'), '--template', 'tulu', '--bench', 'xquad', '--data', data, '--out', join(dir, 'c'), '--limit', '1'], command);
  t.match(gen.prompts[0], /^<\|user\|>\n/, '--template wins');
  gen = new FakeGenerator();
  await run(['--model', 'm', '--bench', 'xquad', '--data', data, '--out', join(dir, 'd'), '--limit', '1'], command);
  t.match(gen.prompts[0], /^<\|user\|>\n/, 'nothing recorded: tulu');
  await t.rejects(run(['--model', 'm', '--adapter', join(dir, 'chat'), '--bench', 'xquad', '--data', data, '--limit', '1'], command), {
    code: 'ERR_ARGUMENT',
    message: /chat[/\\]seqtune\.json says this was trained with the model's chat template, which eval cannot render; give --template/,
  });
});
