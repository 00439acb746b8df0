/** The CLI's dispatch, `info` and `generate`, in-process (the train CLI runs as a child in test/train). */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { capture } from '../helpers/cli';
import { formatDeviceReport } from '../../lib/cli/info';
import { devices } from '../../lib/device';
import { initModel } from '../../lib/model/init-model';
import { testSeed } from '../helpers/random';

t.test('info lists each GPU, and the Hopper kernels\' self-test states on a compute capability 9.0 one', async (t) => {
  const here = devices();
  const gpu = { totalMemory: 80 * 2 ** 30, usable: true, reason: '' };
  const report = {
    ...here,
    gpus: [
      { ...gpu, index: 0, name: 'NVIDIA H100 80GB HBM3', freeMemory: 75 * 2 ** 30, computeCapability: '9.0', hopperKernels: { gemm: 'on', attentionForward: 'untested', attentionBackward: 'off: problem 2 (token 7): Hopper kernels 0.5' } },
      { ...gpu, index: 1, name: 'NVIDIA A100-SXM4-80GB', freeMemory: null, computeCapability: '8.0', hopperKernels: {} },
    ],
  };
  const lines = formatDeviceReport(report).split('\n');
  const h100 = lines.findIndex((l) => l.startsWith('GPU cuda:0: NVIDIA H100 80GB HBM3, 80.0 GiB (75.0 GiB free), compute capability 9.0'));
  t.ok(h100 >= 0, 'the H100 line');
  t.equal(lines[h100 + 1], '  Hopper kernels: gemm on; attentionForward untested; attentionBackward off: problem 2 (token 7): Hopper kernels 0.5');
  const a100 = lines.findIndex((l) => l.startsWith('GPU cuda:1: NVIDIA A100-SXM4-80GB'));
  t.ok(a100 > h100, 'the A100 line');
  t.notOk(lines[a100 + 1].includes('Hopper'), 'no Hopper kernels line for compute capability 8.0');
});

t.test('help, unknown commands and info', async (t) => {
  const help = await capture(['--help']);
  t.equal(help.code, 0);
  for (const name of ['info', 'init-model', 'augment', 'train', 'generate', 'eval']) t.match(help.stdout, new RegExp(`\\b${name}\\b`));
  t.equal((await capture([])).code, 2, 'no command is a usage error');
  const unknown = await capture(['fly']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command 'fly'/);
  const info = await capture(['info']);
  t.equal(info.code, 0);
  t.match(info.stdout, /^seqtune \d+\.\d+\.\d+/);
  t.match(info.stdout, /CPU threads: \d+/);
  t.match(info.stdout, /GPU|GPUs/);
  const json = JSON.parse((await capture(['info', '--json'])).stdout);
  t.type(json.cuda.compiled, 'boolean');
  const bad = await capture(['info', '--bogus']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /Unknown option '--bogus'/);
  t.equal((await capture(['train', '--help'])).code, 0);
});

t.test('generate: one prompt streams, a prompts file gives JSON lines, errors are one line', async (t) => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-gen-')), 'model');
  await initModel({ preset: 'tiny', out: dir, tokenizer: 'char', seed: testSeed() % 1000 });
  const one = await capture(['generate', '--model', dir, '--prompt', 'hello', '--max-new-tokens', '4', '--device', 'cpu']);
  t.equal(one.code, 0, one.stderr);
  t.ok(one.stdout.endsWith('\n') && one.stdout.length > 1, `streamed text: ${JSON.stringify(one.stdout)}`);
  const file = path.join(path.dirname(dir), 'prompts.jsonl');
  fs.writeFileSync(file, `${JSON.stringify({ instruction: 'a', input: 'b' })}\n${JSON.stringify({ prompt: 'cd' })}\n`);
  const many = await capture(['generate', '--model', dir, '--prompts', file, '--max-new-tokens', '3', '--template', 'alpaca', '--device', 'cpu']);
  t.equal(many.code, 0, many.stderr);
  const lines = many.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.equal(lines.length, 2);
  t.ok(lines.every((l) => typeof l.output === 'string' && ['eos', 'length', 'stop'].includes(l.finishReason)));
  fs.writeFileSync(file, '{"prompt": 3}\n');
  const broken = await capture(['generate', '--model', dir, '--prompts', file, '--device', 'cpu']);
  t.equal(broken.code, 1);
  t.match(broken.stderr, /prompts\.jsonl:1: expected a "prompt"/);
  const missing = await capture(['generate', '--model', path.join(dir, 'nope'), '--prompt', 'x', '--device', 'cpu']);
  t.equal(missing.code, 1);
  t.notMatch(missing.stderr, /\n\s+at /);
  const template = await capture(['generate', '--model', dir, '--prompt', 'x', '--template', 'weird']);
  t.equal(template.code, 2);
});
