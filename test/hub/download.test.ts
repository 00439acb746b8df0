/**
 * Models by Hub id against a loopback stand-in for the Hub (test/helpers/hub-server.ts): cold and
 * warm cache in huggingface_hub's layout, redirects, ETags, Range resumes after a cut connection,
 * gated and missing repositories, a revision pinned by commit, offline mode. No test touches the
 * network: every request goes to 127.0.0.1 and is logged.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { HubClient, HubError } from '../../lib/hub/api';
import { RepoCache } from '../../lib/hub/cache';
import { hubCacheDir, hubToken } from '../../lib/hub/env';
import { globToRegExp, planFiles } from '../../lib/hub/files';
import { TransferProgress } from '../../lib/hub/progress';
import { parseHubRef } from '../../lib/hub/repo-id';
import { resolveModel } from '../../lib/hub/resolve';
import { fetchSnapshot, FetchOptions } from '../../lib/hub/snapshot';
import { loadModel } from '../../lib/model/load';
import { initModel } from '../../lib/model/init-model';
import { HubServer, readFolder } from '../helpers/hub-server';
import { testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), `seqtune-hub-${prefix}-`));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A tiny random model as the files a Hub repo holds, plus files seqtune must not fetch. */
async function tinyRepo(modelSeed: number, maxShardBytes?: number): Promise<Map<string, Buffer>> {
  const dir = path.join(tmp('src'), 'model');
  await initModel({ preset: 'tiny', out: dir, tokenizer: 'char', seed: modelSeed, maxShardBytes });
  const files = readFolder(dir);
  files.set('README.md', Buffer.from('# tiny\n'));
  files.set('pytorch_model.bin', Buffer.alloc(64, 7));
  files.set('original/consolidated.safetensors', Buffer.alloc(32, 1));
  return files;
}

let server: HubServer;
let sharded: Map<string, Buffer>;
let single: Map<string, Buffer>;
let mainCommit: string;
let oldCommit: string;
/** an endpoint where nothing listens */
let dead: string;

t.before(async () => {
  single = await tinyRepo(seed % 100_000);
  sharded = await tinyRepo((seed + 1) % 100_000, 40_000);
  server = await new HubServer().start();
  oldCommit = server.addCommit('tiny-org/tiny-llama', single, { ref: 'v1' });
  mainCommit = server.addCommit('tiny-org/tiny-llama', sharded);
  server.addCommit('tiny-org/gated-llama', single, { token: 'hf_secret' });
  server.rename('old-org/tiny-llama', 'tiny-org/tiny-llama');
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  dead = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((r) => closed.close(r));
});
t.teardown(() => server.close());

function options(cacheDir: string, extra: Partial<FetchOptions> & { token?: string } = {}): FetchOptions & { lines: string[] } {
  const lines: string[] = [];
  return { cacheDir, client: new HubClient(server.endpoint, extra.token), stream: { write: (s: string) => lines.push(s) }, lines, ...extra };
}

function sameFiles(t: Tap.Test, dir: string, expected: Map<string, Buffer>, names: string[]) {
  for (const name of names) t.equal(sha256(fs.readFileSync(path.join(dir, name))), sha256(expected.get(name)!), `${name} has the served bytes`);
}

t.test('ids: ORG/NAME[@REVISION], and what is not one', async (t) => {
  t.same(parseHubRef('meta-llama/Llama-3.2-1B'), { id: 'meta-llama/Llama-3.2-1B', revision: 'main' });
  t.same(parseHubRef('a/b@refs/pr/3'), { id: 'a/b', revision: 'refs/pr/3' });
  for (const bad of ['/abs/path', './x/y', 'a/b/c', 'a', 'a--b/c', 'a/b@', 'a/b@../x', 'a/..b', '-a/b']) t.equal(parseHubRef(bad), null, bad);
  t.ok(globToRegExp('*.json').test('sub/config.json'), '* crosses folders, as fnmatch');
  t.notOk(globToRegExp('model-0000[1-2]*').test('model-00003-of-00003.safetensors'));
  t.throws(() => planFiles({ id: 'o/n', revision: 'main' }, ['config.json', 'pytorch_model.bin']), /o\/n has no safetensors weights \(only pytorch_model\.bin\)/);
});

t.test('the cache folder and token are found as huggingface_hub finds them', async (t) => {
  const home = os.homedir();
  t.equal(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
  t.equal(hubCacheDir({ HF_HOME: '/h' }), '/h/hub');
  t.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
  t.equal(hubCacheDir({}), path.join(home, '.cache/huggingface/hub'));
  t.equal(hubCacheDir({ HF_HOME: '~/hf' }), path.join(home, 'hf/hub'));
  const hfHome = tmp('home');
  fs.writeFileSync(path.join(hfHome, 'token'), 'hf_fromfile\n');
  t.equal(hubToken({ HF_HOME: hfHome }), 'hf_fromfile', 'the token `hf auth login` saved');
  t.equal(hubToken({ HF_HOME: hfHome, HF_TOKEN: 'hf_env' }), 'hf_env', 'HF_TOKEN wins');
});

t.test('cold cache: only the needed files, in huggingface_hub\'s layout; warm cache: one request, no transfer', async (t) => {
  const cacheDir = tmp('cache');
  const ref = parseHubRef('tiny-org/tiny-llama')!;
  const from = server.log.length;
  const cold = await fetchSnapshot(ref, options(cacheDir));
  t.equal(cold.commit, mainCommit);
  const repo = new RepoCache(ref.id, cacheDir);
  t.equal(cold.dir, path.join(cacheDir, 'models--tiny-org--tiny-llama', 'snapshots', mainCommit));
  t.equal(fs.readFileSync(path.join(repo.folder, 'refs', 'main'), 'utf8'), mainCommit, 'refs/main holds the commit');
  const shards = [...sharded.keys()].filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f));
  t.ok(shards.length >= 2, `the model is sharded (${shards.length} shards)`);
  const expected = ['config.json', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json', ...shards].sort();
  t.same(fs.readdirSync(cold.dir).sort(), expected, 'no README, .bin or original/ copies');
  for (const name of expected) {
    const link = path.join(cold.dir, name);
    t.ok(fs.lstatSync(link).isSymbolicLink(), `${name} is a link`);
    const target = fs.readlinkSync(link);
    t.notOk(path.isAbsolute(target), 'a relative link, as huggingface_hub makes');
    const blob = path.basename(target);
    t.equal(path.resolve(cold.dir, target), path.join(repo.folder, 'blobs', blob));
    t.equal(blob, name.endsWith('.safetensors') ? sha256(sharded.get(name)!) : createHash('sha1').update(`blob ${sharded.get(name)!.length}\0`).update(sharded.get(name)!).digest('hex'), `${name}: blob named by its ETag`);
  }
  sameFiles(t, cold.dir, sharded, expected);
  const reqs = server.log.slice(from);
  t.ok(reqs.some((r) => r.method === 'HEAD' && r.server === 'hub') && reqs.some((r) => r.method === 'GET' && r.server === 'cdn'), 'HEAD on the Hub, bytes from the CDN');
  t.notOk(reqs.some((r) => /README|pytorch_model|original/.test(r.url)), 'never asked for the files it does not need');
  t.ok(fs.readdirSync(path.join(repo.folder, 'blobs')).every((f) => !f.endsWith('.incomplete')));

  const mark = server.log.length;
  const warm = await fetchSnapshot(ref, options(cacheDir));
  t.equal(warm.dir, cold.dir);
  t.same(warm.downloaded, []);
  t.same(server.requests(mark), [`GET /api/models/tiny-org/tiny-llama/revision/main`], 'warm: one revision lookup, no HEAD, no transfer');

  const stale = await fetchSnapshot(ref, { ...options(cacheDir), client: new HubClient(dead) });
  t.equal(stale.dir, cold.dir, 'the Hub unreachable: the cached snapshot stands in');
  const offline = options(cacheDir, { offline: true });
  const mark2 = server.log.length;
  t.equal((await fetchSnapshot(ref, offline)).dir, cold.dir);
  t.equal(server.log.length, mark2, 'offline: no request at all');

  const loaded = await loadModel(cold.dir);
  t.equal(loaded.config.vocabSize > 0, true, 'the snapshot loads');
  loaded.model.dispose?.();
});

t.test('a revision pinned by commit, a tag, and a renamed repository', async (t) => {
  const cacheDir = tmp('cache');
  const pinned = parseHubRef(`tiny-org/tiny-llama@${oldCommit}`)!;
  const snap = await fetchSnapshot(pinned, options(cacheDir));
  t.equal(snap.commit, oldCommit);
  t.same(fs.readdirSync(snap.dir).sort(), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  sameFiles(t, snap.dir, single, ['model.safetensors', 'config.json']);
  t.notOk(fs.existsSync(path.join(cacheDir, 'models--tiny-org--tiny-llama', 'refs', 'main')), 'no ref written for a commit');
  const mark = server.log.length;
  t.equal((await fetchSnapshot(pinned, options(cacheDir))).dir, snap.dir);
  t.equal(server.log.length, mark, 'a cached pinned commit needs no request');

  const tagged = await fetchSnapshot(parseHubRef('tiny-org/tiny-llama@v1')!, options(cacheDir));
  t.equal(tagged.commit, oldCommit);
  t.same(tagged.downloaded, [], 'the same commit: nothing to fetch');
  t.equal(fs.readFileSync(path.join(cacheDir, 'models--tiny-org--tiny-llama', 'refs', 'v1'), 'utf8'), oldCommit);

  // The Hub answers 307 for a renamed repository; the files come under the new name's commit.
  const moved = await fetchSnapshot(parseHubRef(`old-org/tiny-llama@${oldCommit}`)!, options(tmp('cache')));
  sameFiles(t, moved.dir, single, ['model.safetensors']);
});

t.test('gated, missing and wrong-revision models: one line naming the id and the fix', async (t) => {
  const cacheDir = tmp('cache');
  const gated = parseHubRef('tiny-org/gated-llama')!;
  await t.rejects(fetchSnapshot(gated, options(cacheDir)), /tiny-org\/gated-llama is gated or private \(401\): accept its terms at http:\/\/127\.0\.0\.1:\d+\/tiny-org\/gated-llama, then set HF_TOKEN/);
  await t.rejects(fetchSnapshot(gated, options(cacheDir, { token: 'hf_wrong' })), /tiny-org\/gated-llama: the Hub refused the token in HF_TOKEN \(403\)/);
  const mark = server.log.length;
  const ok = await fetchSnapshot(gated, options(cacheDir, { token: 'hf_secret' }));
  sameFiles(t, ok.dir, single, ['model.safetensors']);
  const log = server.log.slice(mark);
  t.ok(log.filter((r) => r.server === 'hub').every((r) => r.authorization === 'Bearer hf_secret'), 'the token goes to the Hub');
  t.ok(log.filter((r) => r.server === 'cdn').every((r) => r.authorization === undefined), 'and never to the CDN');

  await t.rejects(fetchSnapshot(parseHubRef('tiny-org/no-such-model')!, options(cacheDir)), /no model tiny-org\/no-such-model on http:\/\/127\.0\.0\.1:\d+ \(404\), and no local folder of that name: check the id; for a private model set HF_TOKEN/);
  await t.rejects(fetchSnapshot(parseHubRef('tiny-org/tiny-llama@nope')!, options(cacheDir)), /tiny-org\/tiny-llama has no revision 'nope' \(404\)/);
  await t.rejects(
    fetchSnapshot(parseHubRef('tiny-org/tiny-llama')!, options(cacheDir, { offline: true })),
    /HF_HUB_OFFLINE is set and tiny-org\/tiny-llama is not in the cache .*: run 'seqtune download tiny-org\/tiny-llama' while online/,
  );
  await t.rejects(fetchSnapshot(parseHubRef('tiny-org/tiny-llama')!, { ...options(cacheDir), client: new HubClient(dead) }), /cannot reach http:\/\/127\.0\.0\.1:\d+ for tiny-org\/tiny-llama \(ECONNREFUSED\)/);
});

t.test('a connection cut mid-file resumes with a Range request; cut too often, it stops and resumes on the next run', async (t) => {
  const ref = parseHubRef(`tiny-org/tiny-llama@${oldCommit}`)!;
  const weights = single.get('model.safetensors')!;
  const cut = 1 + Math.floor(((seed % 997) / 997) * (weights.length / 4)); // so three cuts stop short of the end
  t.comment(`cut after ${cut} of ${weights.length} bytes`);

  const once = tmp('cache');
  server.cut('model.safetensors', cut, 1);
  const mark = server.log.length;
  const snap = await fetchSnapshot(ref, options(once));
  sameFiles(t, snap.dir, single, ['model.safetensors']);
  const gets = server.log.slice(mark).filter((r) => r.server === 'cdn' && r.method === 'GET');
  t.same(gets.map((r) => r.range), [undefined, `bytes=${cut}-`], 'the second request asks for the rest');

  const often = tmp('cache');
  server.cut('model.safetensors', cut, 3);
  await t.rejects(fetchSnapshot(ref, options(often)), /tiny-org\/tiny-llama@[0-9a-f]{40}: the transfer of model\.safetensors was cut .* 3 times: run the same command again to resume/);
  const blobs = path.join(often, 'models--tiny-org--tiny-llama', 'blobs');
  const partial = fs.readdirSync(blobs).filter((f) => f.endsWith('.incomplete'));
  t.equal(partial.length, 1, 'the partial file is kept as .incomplete');
  const have = fs.statSync(path.join(blobs, partial[0])).size;
  t.ok(have > 0 && have < weights.length, `${have} bytes kept`);
  t.notOk(fs.existsSync(path.join(blobs, sha256(weights))), 'no blob a later run would trust');
  t.notOk(fs.existsSync(path.join(often, 'models--tiny-org--tiny-llama', 'snapshots', oldCommit, 'model.safetensors')), 'and no link to one');
  const mark2 = server.log.length;
  const resumed = await fetchSnapshot(ref, options(often));
  sameFiles(t, resumed.dir, single, ['model.safetensors']);
  t.same(server.log.slice(mark2).filter((r) => r.server === 'cdn').map((r) => r.range), [`bytes=${have}-`], 'the next run resumes from the partial file');
});

t.test('a partial file with wrong bytes is caught by the sha256 and deleted', async (t) => {
  const cacheDir = tmp('cache');
  const weights = single.get('model.safetensors')!;
  const blobs = path.join(cacheDir, 'models--tiny-org--tiny-llama', 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  const bad = Buffer.from(weights.subarray(0, weights.length >> 1));
  bad[bad.length >> 1] ^= 0xff;
  fs.writeFileSync(path.join(blobs, `${sha256(weights)}.incomplete`), bad);
  const ref = parseHubRef(`tiny-org/tiny-llama@${oldCommit}`)!;
  await t.rejects(fetchSnapshot(ref, options(cacheDir)), /model\.safetensors arrived corrupt \(its sha256 is not the ETag the Hub gave\); the bad copy was deleted: run again/);
  t.same(fs.readdirSync(blobs).filter((f) => f.startsWith(sha256(weights))), [], 'neither the bad part nor a blob is left');
  sameFiles(t, (await fetchSnapshot(ref, options(cacheDir))).dir, single, ['model.safetensors']);
});

t.test('a full disk stops with the id, the space needed and the fix, and leaves only a partial file', { skip: !fs.existsSync('/dev/full') && 'needs /dev/full' }, async (t) => {
  const cacheDir = tmp('cache');
  const weights = single.get('model.safetensors')!;
  const blobs = path.join(cacheDir, 'models--tiny-org--tiny-llama', 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  // Writes into the partial file land on /dev/full, which answers ENOSPC.
  fs.symlinkSync('/dev/full', path.join(blobs, `${sha256(weights)}.incomplete`));
  await t.rejects(fetchSnapshot(parseHubRef(`tiny-org/tiny-llama@${oldCommit}`)!, options(cacheDir)), /no space left on the disk of .* for tiny-org\/tiny-llama@[0-9a-f]{40} .*: free space there, or set HF_HUB_CACHE to a folder on a larger disk/);
  t.notOk(fs.existsSync(path.join(blobs, sha256(weights))));
});

t.test('a model bigger than the free space is refused before any byte is written', async (t) => {
  const cacheDir = tmp('cache');
  const weights = single.get('model.safetensors')!;
  server.claimSize('model.safetensors', 2 ** 50);
  t.teardown(() => server.claimSize('model.safetensors', weights.length));
  const mark = server.log.length;
  await t.rejects(
    fetchSnapshot(parseHubRef(`tiny-org/tiny-llama@${oldCommit}`)!, options(cacheDir)),
    /^no space left on the disk of .*models--tiny-org--tiny-llama for tiny-org\/tiny-llama@[0-9a-f]{40} \([\d.]+ TiB more needed\): free space there, or set HF_HUB_CACHE to a folder on a larger disk$/,
  );
  t.notOk(server.log.slice(mark).some((r) => r.server === 'cdn'), 'no transfer started');
  t.same(fs.readdirSync(path.join(cacheDir, 'models--tiny-org--tiny-llama', 'blobs')), [], 'nothing written');
});

t.test('a cache folder that cannot be used is one line naming the id, the path and the fix', async (t) => {
  const notADir = path.join(tmp('cache'), 'file');
  fs.writeFileSync(notADir, '');
  await t.rejects(
    fetchSnapshot(parseHubRef(`tiny-org/tiny-llama@${oldCommit}`)!, options(notADir)),
    /^tiny-org\/tiny-llama@[0-9a-f]{40}: cannot use the Hugging Face cache \(ENOTDIR .*file\/models--tiny-org--tiny-llama.*\): check its permissions, or set HF_HUB_CACHE/,
  );
});

t.test('--include picks files; the progress bar shows bytes, percent and rate', async (t) => {
  const cacheDir = tmp('cache');
  const opts = options(cacheDir, { include: ['*.json'] });
  const snap = await fetchSnapshot(parseHubRef('tiny-org/tiny-llama')!, opts);
  t.same(fs.readdirSync(snap.dir).sort(), ['config.json', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json']);
  t.match(opts.lines.at(-1), /^tiny-org\/tiny-llama: [\d.]+ KiB \/ [\d.]+ KiB \(100%\), [\d.]+ (B|KiB|MiB)\/s\n$/, 'a plain line when not a terminal');
  await t.rejects(fetchSnapshot(parseHubRef('tiny-org/tiny-llama')!, options(cacheDir, { include: ['*.gguf'] })), /no file of tiny-org\/tiny-llama matches --include \*\.gguf/);

  let clock = 0;
  let out = '';
  const bar = new TransferProgress('x/y', 4 * 2 ** 20, 2 ** 20, { isTTY: true, write: (s: string) => (out += s) }, () => clock);
  clock = 1000;
  bar.add(2 ** 20);
  t.equal(out, '\rx/y: 2.0 MiB / 4.0 MiB (50%), 1.0 MiB/s\x1b[K', 'a terminal redraws one line; the rate counts this run\'s bytes only');
});

t.test('--model: an existing local folder wins over an id of the same name', async (t) => {
  const cwd = process.cwd();
  const dir = tmp('cwd');
  const local = path.join(dir, 'tiny-org', 'tiny-llama');
  fs.mkdirSync(local, { recursive: true });
  process.chdir(dir);
  t.teardown(() => process.chdir(cwd));
  const resolved = await resolveModel('tiny-org/tiny-llama', { client: new HubClient(dead), cacheDir: tmp('cache') });
  t.same(resolved, { dir: 'tiny-org/tiny-llama', name: local });
  t.ok(new HubError('x').code === 'ERR_HUB');
});
