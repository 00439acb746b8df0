import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { augmentFile, augmentRecords } from '../../lib/data/augment';
import { buildVqaData } from '../../lib/data/caption';
import { planMix } from '../../lib/data/mixing';
import { AlpacaRecord } from '../../lib/data/records';
import { augmentCommand, augmentRequest } from '../../lib/cli/augment';
import { parseCommandArgs } from '../../lib/cli/command';
import { isSeqtuneError } from '../../lib/errors';
import { HostRng } from '../../lib/rng';
import { testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = new HostRng(seed);
const dir = mkdtempSync(join(tmpdir(), 'seqtune-augment-'));

function randomRecords(n: number, withInputShare = 0.6): AlpacaRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    instruction: `Task ${i}: do thing ${rng.int(1000)}`,
    input: rng.uniform() < withInputShare ? `input ${i} ${rng.int(1000)}` : '',
    output: `answer ${i}`,
    idx: i,
  }));
}

function writeJsonl(name: string, records: unknown[]): string {
  const p = join(dir, name);
  writeFileSync(p, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
}

function readJsonl(p: string): Record<string, unknown>[] {
  return readFileSync(p, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

t.test('planMix: targets, disjointness, even language split, determinism', async (t) => {
  const n = 500 + rng.int(500);
  const elig = [Array.from({ length: n }, () => rng.uniform() < 0.7), Array.from({ length: n }, () => rng.uniform() < 0.5)];
  const e = (s: number, i: number) => elig[s][i];
  const planSeed = rng.int(1 << 30);
  const plan = planMix(n, 2, e, { fraction: 0.4, seed: planSeed, languages: ['de', 'zh', 'ru'] }, [false, true]);
  const eligible = elig.map((list) => list.filter(Boolean).length);
  t.same(plan.eligible, eligible);
  for (let s = 0; s < 2; s++) {
    const got = Array.from(plan.strategy).filter((x) => x === s).length;
    t.equal(got, plan.assigned[s]);
    t.ok(got <= Math.round(0.4 * eligible[s]), 'never over target');
    t.ok(got >= Math.round(0.4 * eligible[s]) - 1, `strategy ${s} reaches its target (${got})`);
  }
  for (let i = 0; i < n; i++) if (plan.strategy[i] >= 0) t.ok(elig[plan.strategy[i]][i], 'assigned only where eligible') || i;
  const perLang = [0, 0, 0];
  for (let i = 0; i < n; i++) if (plan.strategy[i] === 1) perLang[plan.language[i]]++;
  t.ok(Math.max(...perLang) - Math.min(...perLang) <= 1, `languages split evenly ${perLang}`);
  const again = planMix(n, 2, e, { fraction: 0.4, seed: planSeed, languages: ['de', 'zh', 'ru'] }, [false, true]);
  t.same(Array.from(again.strategy), Array.from(plan.strategy), 'same seed, same plan');
  const other = planMix(n, 2, e, { fraction: 0.4, seed: planSeed + 1, languages: ['de', 'zh', 'ru'] }, [false, true]);
  t.not(Array.from(other.strategy).join(), Array.from(plan.strategy).join(), 'another seed, another plan');
  // strategies sharing all records split them evenly
  const both = planMix(100, 2, () => true, {}, []);
  t.same(both.assigned, [50, 50]);
  t.same(planMix(10, 1, () => true, { count: 3 }).assigned, [3]);
  for (const bad of [{ fraction: 1.5 }, { count: -1 }, { fraction: 0.5, count: 2 }, { mode: 'mix' as 'add' }]) {
    t.throws(() => planMix(3, 1, () => true, bad), /fraction|count|mode/);
  }
});

t.test('augmentFile repeat: replace and add, counts, order, determinism', async (t) => {
  const records = randomRecords(300);
  const input = writeJsonl('in.jsonl', records);
  const withInput = records.filter((r) => r.input !== '').length;
  const out = join(dir, 'out.jsonl');
  const report = await augmentFile({ in: input, out, strategies: ['repeat'] });
  t.same({ in: report.in, augmented: report.augmented, kept: report.kept, skipped: report.skipped, truncated: report.truncated }, { in: 300, augmented: withInput, kept: 300, skipped: 0, truncated: 0 });
  const rows = readJsonl(out);
  t.equal(rows.length, 300);
  rows.forEach((row, i) => {
    const r = records[i];
    if (r.input !== '') t.same(row, { instruction: `First repeat the input, then ${r.instruction}`, input: r.input, output: `${r.input}\n${r.output}`, idx: i, strategy: 'repeat' });
    else t.same(row, r);
  });
  const half = await augmentFile({ in: input, out, strategies: ['repeat'], fraction: 0.5, mode: 'add', seed: 11 });
  t.equal(half.augmented, Math.round(withInput / 2));
  t.equal(half.kept, 300 + half.augmented);
  const rows2 = readJsonl(out);
  t.same(rows2.filter((r) => !r.strategy), records, 'add mode keeps every original, in order');
  const first = readFileSync(out, 'utf8');
  await augmentFile({ in: input, out, strategies: ['repeat'], fraction: 0.5, mode: 'add', seed: 11 });
  t.equal(readFileSync(out, 'utf8'), first, 'same seed, same bytes');
});

t.test('skipInvalid counts bad lines; without it the first bad line stops the run', async (t) => {
  const p = join(dir, 'bad.jsonl');
  writeFileSync(p, '{"instruction": "a", "input": "x", "output": "b"}\nnot json\n{"instruction": 3}\n');
  const report = await augmentFile({ in: p, out: join(dir, 'o.jsonl'), strategies: ['repeat'], skipInvalid: true });
  t.same([report.in, report.skipped, report.kept, report.augmented], [3, 2, 1, 1]);
  await t.rejects(augmentFile({ in: p, out: join(dir, 'o.jsonl'), strategies: ['repeat'] }), /bad\.jsonl:2: invalid JSON/);
});

t.test('translate from parallel files; paraphrase from a field; multi-step; v3', async (t) => {
  const en = randomRecords(60, 0.5).map((r) => ({ ...r, para: `para ${r.idx}` }));
  const de = en.map((r) => ({ instruction: `DE ${r.instruction}`, input: r.input ? `DE ${r.input}` : '', output: `DE ${r.output}` }));
  const zh = en.map((r) => ({ instruction: `ZH ${r.instruction}`, input: r.input ? `ZH ${r.input}` : '', output: `ZH ${r.output}` }));
  const files = { en: writeJsonl('en.jsonl', en), de: writeJsonl('de.jsonl', de), zh: writeJsonl('zh.jsonl', zh) };
  const out = join(dir, 'tr.jsonl');
  const report = await augmentFile({ in: files.en, out, parallel: { de: files.de, zh: files.zh }, strategies: ['translate', 'translate-single-turn'], languages: ['de', 'zh'], seed: 5 });
  const rows = readJsonl(out);
  t.equal(rows.length, 60);
  const withInput = en.filter((r) => r.input).length;
  t.same(report.strategies.translate, { eligible: withInput, assigned: withInput, produced: withInput });
  t.equal(report.strategies['translate-single-turn'].produced, 60 - withInput);
  const langs = { de: 0, zh: 0 };
  rows.forEach((row, i) => {
    const lang = row.lang as 'de' | 'zh';
    langs[lang]++;
    const rowsFor = { de, zh }[lang];
    if (en[i].input) {
      t.equal(row.input, rowsFor[i].input, 'v1: the foreign input of the same row');
      t.equal(row.output, `Translation into English: \n${en[i].input}\nResult: ${en[i].output}`);
    } else {
      t.ok((row.instruction as string).startsWith(rowsFor[i].instruction), 'v3: the foreign instruction of the same row');
      t.equal(row.output, `English Translation: ${en[i].instruction}\nAnswer: ${en[i].output}`);
    }
  });
  t.ok(Math.abs(langs.de - langs.zh) <= 2, `languages balanced ${JSON.stringify(langs)}`);

  const mixed = await augmentRecords(en, { strategies: ['paraphrase', 'repeat-paraphrase'], paraphraseField: 'para', seed: 3, verbalise: true });
  const paraRows = mixed.records.filter((r) => (r as AlpacaRecord).strategy === 'paraphrase') as AlpacaRecord[];
  const multiRows = mixed.records.filter((r) => (r as AlpacaRecord).strategy === 'repeat-paraphrase') as AlpacaRecord[];
  t.equal(paraRows.length + multiRows.length, withInput);
  for (const r of paraRows) t.equal(r.output, `Paraphrase:\npara ${r.idx}\nResult: answer ${r.idx}`);
  for (const r of multiRows) t.match(r.output, new RegExp(`^1\\. Repeat:\\ninput ${r.idx} \\d+\\n2\\. Paraphrase:\\npara ${r.idx}\\nResult: answer ${r.idx}$`));

  const multi = await augmentRecords(en.filter((r) => !r.input), { strategies: ['translate-multi-turn'], languages: ['de'], parallel: { de: de.filter((_, i) => !en[i].input) } });
  t.ok(multi.records.every((r) => 'messages' in r && r.messages.length === 4));
});

t.test('argument errors', async (t) => {
  const input = writeJsonl('small.jsonl', randomRecords(5));
  const out = join(dir, 'x.jsonl');
  const cases: Array<[Parameters<typeof augmentFile>[0], RegExp]> = [
    [{ in: input, out, strategies: [] }, /at least one strategy/],
    [{ in: input, out, strategies: ['shuffle'] }, /unknown strategy 'shuffle'/],
    [{ in: input, out, strategies: ['translate'] }, /need at least one language/],
    [{ in: input, out, strategies: ['translate'], languages: ['de'], parallel: { fr: input } }, /no parallel file for language\(s\) de/],
    [{ in: input, out, strategies: ['translate-single-turn'], languages: ['de'] }, /needs translations: parallel files/],
    [{ in: input, out, strategies: ['translate'], languages: ['de'], parallel: { en: input, de: input } }, /do not list it in parallel/],
    [{ in: input, out, strategies: ['repeat-paraphrase'] }, /needs paraphrases: a record field/],
    [{ in: input, out, strategies: ['repeat', 'repeat', 'repeat', 'repeat', 'repeat', 'repeat', 'repeat', 'repeat', 'repeat'] }, /at most 8/],
  ];
  for (const [options, pattern] of cases) {
    try {
      await augmentFile(options);
      t.fail(`expected ${pattern}`);
    } catch (error) {
      t.ok(isSeqtuneError(error, 'ERR_ARGUMENT'), String(pattern));
      t.match((error as Error).message, pattern);
    }
  }
  await t.rejects(augmentRecords([{ instruction: 'a', input: 'b', output: 'c' }], { strategies: ['translate'], languages: ['de'], parallel: { de: [] } }), /1 rows|0 rows/);
});

t.test('the augment command parses flags into the request and prints counts', async (t) => {
  const records = randomRecords(40);
  const input = writeJsonl('cli.jsonl', records);
  const out = join(dir, 'cli-out.jsonl');
  const argv = ['--in', input, '--out', out, '--strategy', 'repeat', '--fraction', '0.5', '--mode', 'add', '--seed', '7', '--languages', 'de, zh'];
  const { values } = parseCommandArgs(augmentCommand, argv);
  const request = augmentRequest(values, augmentCommand);
  t.match(request, { in: input, out, strategies: ['repeat'], fraction: 0.5, mode: 'add', seed: 7, languages: ['de', 'zh'] });
  const logs: string[] = [];
  const log = console.log;
  console.log = (s: string) => logs.push(s);
  try {
    t.equal(await augmentCommand.run(values, []), 0);
    t.equal(await augmentCommand.run({ ...values, json: true }, []), 0);
  } finally {
    console.log = log;
  }
  const withInput = records.filter((r) => r.input).length;
  const k = Math.round(withInput / 2);
  t.equal(logs[0], `in 40, augmented ${k}, kept ${40 + k}, skipped 0, truncated 0`);
  t.match(logs[1], /repeat: eligible \d+, assigned \d+, produced \d+/);
  t.equal(JSON.parse(logs[2]).counts.augmented, k);
  const bad = (argv2: string[]) => augmentRequest(parseCommandArgs(augmentCommand, argv2).values, augmentCommand);
  t.throws(() => bad(['--in', input, '--out', out]), /--strategy is required/);
  t.throws(() => bad(['--in', input, '--out', out, '--strategy', 'repeat', '--endpoint', 'http://x']), /go together/);
  t.throws(() => bad(['--in', input, '--out', out, '--strategy', 'repeat', '--parallel', 'de']), /LANG=FILE/);
  t.throws(() => bad(['--in', input, '--out', out, '--strategy', 'repeat', '--count', '1.5']), /integer/);
  t.throws(() => parseCommandArgs(augmentCommand, ['--bogus']), /usage: seqtune augment/);
  t.match(bad(['--in', input, '--out', out, '--strategy', 'x', '--endpoint', 'http://h/v1', '--model', 'm', '--parallel', 'de=a,zh=b', '--concurrency', '3']), {
    endpoint: { endpoint: 'http://h/v1', model: 'm', concurrency: 3 },
    parallel: { de: 'a', zh: 'b' },
  });
});

t.test('caption-then-answer VQA data from question and caption files', async (t) => {
  const questions = join(dir, 'vqa.json');
  writeFileSync(
    questions,
    JSON.stringify([
      { question_id: 1, question: 'What animal?', answer: ['dog', 'puppy'], image: 'a.jpg' },
      { question_id: 2, question: 'How many?', answer: ['2'], image: 'b.jpg' },
      { question_id: 3, question: 'Orphan?', answer: ['x'], image: 'none.jpg' },
      { question_id: 4, question: 'Bad', image: 'a.jpg' },
    ]),
  );
  const captions = writeJsonl('caps.jsonl', [
    { caption: 'A dog on grass.', image: 'a.jpg' },
    { caption: 'Two cats.', image: 'b.jpg' },
    { caption: 'A pair of cats.', image: 'b.jpg' },
  ]);
  const out = join(dir, 'vqa-out.jsonl');
  const counts = await buildVqaData({ questions, captions, out, mix: 'merge', seed: 1, skipInvalid: true });
  t.same([counts.in, counts.kept, counts.augmented, counts.skipped], [4, 4, 2, 2]);
  const rows = readJsonl(out);
  t.same(rows.map((r) => r.output), ['Answer: dog', 'Description: A dog on grass.\nAnswer: dog', 'Answer: 2', rows[3].output]);
  t.match(rows[3].output, /^Description: (Two cats\.|A pair of cats\.)\nAnswer: 2$/);
  t.same(rows.map((r) => r.image), ['a.jpg', 'a.jpg', 'b.jpg', 'b.jpg']);
  const seq = await buildVqaData({ questions, captions, out, mix: 'sequential', skipInvalid: true });
  t.equal(seq.kept, 2);
  await t.rejects(buildVqaData({ questions, captions, out }), /vqa\.json:1: VQA question has no 'answer'/);
  await t.rejects(buildVqaData({ questions, captions, out, mix: 'all' as 'base' }), /unknown VQA mix/);
  await t.rejects(buildVqaData({ questions, captions: questions, out }), /caption record needs/);
});
