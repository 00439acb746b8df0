/**
 * scripts/gpu.sh all's time-boxing with fake jobs on the CPU: each job gets a slot from one budget
 * (its cap, cut for later jobs' minimums, never below its own minimum while the budget has it), a
 * hanging job is stopped at its slot and costs only that, a failing job does not stop the rest, a
 * job the budget cannot fit is skipped, and everything comes back as one tar file.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

t.test('slots from one budget; a hang costs its slot; one tar comes back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-gpu-all-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const jobs = path.join(dir, 'jobs');
  fs.writeFileSync(
    jobs,
    [
      `quick 1 5 echo hello; echo '{"x": 1}' > "$OUT/result.json"`,
      'hang 3 20 sleep 60',
      'fails 1 5 echo broken; exit 3',
      'last 3 5 echo last job ran',
      'toolate 20 30 echo never',
    ].join('\n') + '\n',
  );
  const started = Date.now();
  const run = spawnSync('bash', [path.join(root, 'scripts', 'gpu.sh'), 'all'], {
    encoding: 'utf8',
    env: { ...process.env, OUT: out, SEQTUNE_GPU_ALL_JOBS: jobs, SEQTUNE_GPU_BUDGET_S: '12', SEQTUNE_GPU_GRACE_S: '1' },
    timeout: 60_000,
  });
  const seconds = (Date.now() - started) / 1000;
  t.equal(run.status, 1, `exit 1: a job failed\n${run.stdout}\n${run.stderr}`);
  t.ok(seconds < 12, `within the budget (${seconds.toFixed(1)} s), though one job hangs for 60 s`);
  const line = (name: string) => run.stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? '';
  t.match(line('quick'), /^quick\s+ok\s/);
  t.match(line('hang'), /^hang\s+timeout\s+\d+\s+3$/, 'the hang stopped at its 3 s slot');
  t.match(line('fails'), /^fails\s+rc=3\s/);
  t.match(line('last'), /^last\s+ok\s/, 'jobs after the hang and the failure still run');
  t.match(line('toolate'), /^toolate\s+skipped\s/, 'a job the budget cannot fit is skipped');
  t.same(fs.readdirSync(out), ['gpu-all.tar.gz'], 'one file comes back');
  const list = spawnSync('tar', ['-tzf', path.join(out, 'gpu-all.tar.gz')], { encoding: 'utf8' }).stdout.split('\n');
  for (const f of ['summary.txt', 'quick/log.txt', 'quick/result.json', 'hang/log.txt', 'last/log.txt']) {
    t.ok(list.some((l) => l.replace(/^\.\//, '') === f), `the tar holds ${f}`);
  }
  const summary = spawnSync('tar', ['-xzOf', path.join(out, 'gpu-all.tar.gz'), 'summary.txt'], { encoding: 'utf8' }).stdout;
  t.match(summary, /total \d+s of a 12s budget/);
});
