/**
 * `seqtune download` and `seqtune train --model ORG/NAME` as a user runs them (the compiled CLI in
 * a child process, HF_ENDPOINT pointing at the loopback Hub stand-in): a cold cache, a warm one,
 * offline, and one-line errors.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initModel } from '../../lib/model/init-model';
import { HubServer, readFolder } from '../helpers/hub-server';
import { testSeed } from '../helpers/random';
import { dataFile, sampleRecords } from '../train/fixtures';

const cli = path.resolve(__dirname, '../../dist/lib/cli.js');
const seed = testSeed();
t.comment(`seed ${seed}`);
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), `seqtune-hubcli-${prefix}-`));

/** Runs the CLI without blocking this process (the server answers from it). */
function seqtune(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, HF_TOKEN: '', HF_HUB_OFFLINE: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('train --model ORG/NAME from a cold cache, then a warm one, then offline', async (t) => {
  const dir = path.join(tmp('src'), 'model');
  await initModel({ preset: 'tiny', out: dir, tokenizer: 'char', seed: seed % 100_000 });
  const server = await new HubServer().start();
  t.teardown(() => server.close());
  const commit = server.addCommit('tiny-org/tiny-llama', readFolder(dir));
  const env = { HF_ENDPOINT: server.endpoint, HF_HUB_CACHE: tmp('cache') };
  const data = dataFile(sampleRecords);
  const args = (out: string) => ['train', '--model', 'tiny-org/tiny-llama', '--data', data, '--out', out, '--device', 'cpu', '--max-steps', '2', '--batch-size', '2', '--max-length', '64'];

  const cold = await seqtune(args(path.join(tmp('run'), 'out')), env);
  t.equal(cold.code, 0, cold.stderr.slice(-500));
  t.match(cold.stderr, /tiny-org\/tiny-llama: [\d.]+ KiB \/ [\d.]+ KiB \(100%\), [\d.]+ (B|KiB|MiB)\/s/, 'one progress line (stderr is not a terminal)');
  const snapshot = path.join(env.HF_HUB_CACHE, 'models--tiny-org--tiny-llama', 'snapshots', commit);
  t.ok(fs.existsSync(path.join(snapshot, 'model.safetensors')));

  const mark = server.log.length;
  const out = path.join(tmp('run'), 'out');
  const warm = await seqtune(args(out), env);
  t.equal(warm.code, 0, warm.stderr.slice(-500));
  t.same(server.requests(mark), ['GET /api/models/tiny-org/tiny-llama/revision/main'], 'warm: one lookup, no download');
  const adapter = JSON.parse(fs.readFileSync(path.join(out, 'adapter', 'adapter_config.json'), 'utf8'));
  t.equal(adapter.base_model_name_or_path, 'tiny-org/tiny-llama', 'the adapter names its base model by id, as PEFT does');

  await server.close();
  const offline = await seqtune(args(path.join(tmp('run'), 'out')), { ...env, HF_HUB_OFFLINE: '1' });
  t.equal(offline.code, 0, offline.stderr.slice(-500));
  const gone = await seqtune(['generate', '--model', 'tiny-org/other', '--prompt', 'x', '--device', 'cpu'], { ...env, HF_HUB_OFFLINE: '1' });
  t.equal(gone.code, 1);
  t.match(gone.stderr, /^seqtune generate: error: HF_HUB_OFFLINE is set and tiny-org\/other is not in the cache .*: run 'seqtune download tiny-org\/other' while online, or unset HF_HUB_OFFLINE\n$/);
});

t.test('seqtune download prints the snapshot folder; errors are one line', async (t) => {
  const dir = path.join(tmp('src'), 'model');
  await initModel({ preset: 'tiny', out: dir, tokenizer: 'char', seed: (seed + 7) % 100_000 });
  const server = await new HubServer().start();
  t.teardown(() => server.close());
  const commit = server.addCommit('tiny-org/tiny-llama', readFolder(dir), { ref: 'v2' });
  server.addCommit('tiny-org/gated', readFolder(dir), { token: 'hf_ok' });
  const env = { HF_ENDPOINT: server.endpoint, HF_HOME: tmp('home') };
  const got = await seqtune(['download', 'tiny-org/tiny-llama@v2', '--include', 'config.json', '--include', '*.safetensors'], env);
  t.equal(got.code, 0, got.stderr);
  const snapshot = path.join(env.HF_HOME, 'hub', 'models--tiny-org--tiny-llama', 'snapshots', commit);
  t.equal(got.stdout, `${snapshot}\n`);
  t.same(fs.readdirSync(snapshot).sort(), ['config.json', 'model.safetensors']);
  t.match(got.stderr, /tiny-org\/tiny-llama@v2 at [0-9a-f]{40}: 2 file\(s\) downloaded/);
  const again = await seqtune(['download', 'tiny-org/tiny-llama@v2', '--include', 'config.json'], env);
  t.match(again.stderr, /already in the cache/);

  const gated = await seqtune(['download', 'tiny-org/gated'], env);
  t.equal(gated.code, 1);
  t.match(gated.stderr, /^seqtune download: error: tiny-org\/gated is gated or private \(401\): accept its terms at .*, then set HF_TOKEN to an access token .*\n$/);
  t.equal((await seqtune(['download', 'tiny-org/gated'], { ...env, HF_TOKEN: 'hf_ok' })).code, 0, 'with the token it downloads');
  const missing = await seqtune(['train', '--model', 'tiny-org/missing', '--data', 'x.jsonl', '--out', tmp('run'), '--device', 'cpu'], env);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^seqtune train: error: no model tiny-org\/missing on http:\/\/127\.0\.0\.1:\d+ \(404\), and no local folder of that name: check the id; for a private model set HF_TOKEN\n$/);
  const usage = await seqtune(['download', './not/an-id'], env);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /'\.\/not\/an-id' is not a Hub model id/);
});
