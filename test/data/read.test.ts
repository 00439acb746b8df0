import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readAllRecords, readRecords, zipRecords } from '../../lib/data/read';
import { emptyCounts, recordToJson } from '../../lib/data/records';
import { isSeqtuneError, SeqtuneError } from '../../lib/errors';

const dir = mkdtempSync(join(tmpdir(), 'seqtune-read-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function expectError(t: typeof import("tap").default, promise: Promise<unknown>, pattern: RegExp, code = 'ERR_DATA') {
  try {
    await promise;
    t.fail(`expected ${pattern}`);
  } catch (error) {
    t.ok(isSeqtuneError(error), 'a SeqtuneError');
    t.equal((error as SeqtuneError).code, code);
    t.match((error as Error).message, pattern);
  }
}

const alpaca = [
  { instruction: 'Add', input: '2 and 3', output: '5', idx: 7, category: 'math' },
  { instruction: 'Greet', output: 'Hello', system_prompt: '' },
];

t.test('Alpaca JSON array and JSONL give the same records', async (t) => {
  const a = file('a.json', '\ufeff' + JSON.stringify(alpaca, null, 2));
  const b = file('a.jsonl', alpaca.map((r) => JSON.stringify(r)).join('\n') + '\n\n');
  for (const p of [a, b]) {
    const records = await readAllRecords(p);
    t.same(records, [
      { instruction: 'Add', input: '2 and 3', output: '5', idx: 7, extra: { category: 'math' } },
      { instruction: 'Greet', input: '', output: 'Hello', system_prompt: '' },
    ]);
    // written back: unknown fields kept
    t.same(recordToJson(records[0]), { category: 'math', instruction: 'Add', input: '2 and 3', output: '5', idx: 7 });
  }
  const lines = [];
  for await (const r of readRecords(a)) lines.push(r.line);
  t.same(lines, [2, 9], 'JSON array records carry the line they start on');
});

t.test('ShareGPT and chat messages become conversations', async (t) => {
  const p = file(
    'c.jsonl',
    [
      JSON.stringify({ conversations: [{ from: 'system', value: 's' }, { from: 'human', value: 'q' }, { from: 'gpt-mt', value: 'a' }], lang: 'de' }),
      JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }], idx: 'x1' }),
    ].join('\n'),
  );
  t.same(await readAllRecords(p), [
    { messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], lang: 'de' },
    { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }], idx: 'x1' },
  ]);
});

const bad: Array<[string, RegExp]> = [
  ['{"instruction": "a", "output": 1}', /field 'output' must be a string/],
  ['{"instruction": "a"}', /has no 'output'/],
  ['{"input": "a", "output": "b"}', /none of 'instruction'/],
  ['[1, 2]', /not a JSON object/],
  ['{"instruction": "a", "output": "b", "idx": {}}', /'idx' must be a number or a string/],
  ['{"instruction": "a", "output": "b", "option": "E"}', /'option' must be A, B, C or D/],
  ['{"messages": []}', /non-empty array/],
  ['{"messages": [{"role": "bot", "content": "x"}]}', /unknown role 'bot'/],
  ['{"conversations": [{"from": "human"}]}', /no string value/],
  ['{"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "s"}]}', /system message may only come first/],
  ['{"messages": [3]}', /is not an object/],
  ['{"instruction": "a", "output": "b",', /invalid JSON/],
];

t.test('every malformed record is an ERR_DATA with file:line and the reason', async (t) => {
  for (const [line, pattern] of bad) {
    const p = file('bad.jsonl', `{"instruction": "ok", "output": "fine"}\n\n${line}\n`);
    await expectError(t, readAllRecords(p), new RegExp(`bad\\.jsonl:3: .*${pattern.source}`));
  }
});

t.test('skipInvalid skips and counts, and reports each skip', async (t) => {
  const p = file('mixed.jsonl', bad.map((b) => b[0]).join('\n') + '\n{"instruction": "ok", "output": "fine"}\n');
  const counts = emptyCounts();
  const skipped: string[] = [];
  const records = [];
  for await (const r of readRecords(p, { skipInvalid: true, counts, onSkip: (e) => skipped.push(e.message) })) records.push(r);
  t.equal(records.length, 1);
  t.equal(records[0].ordinal, bad.length, 'ordinal counts skipped records too');
  t.equal(counts.in, bad.length + 1);
  t.equal(counts.skipped, bad.length);
  t.equal(skipped.length, bad.length);
});

t.test('requireOutput: false reads eval sets without outputs', async (t) => {
  const p = file('eval.json', '[{"instruction": "q", "iteration": 2}]');
  t.same(await readAllRecords(p, { requireOutput: false }), [{ instruction: 'q', input: '', output: '', extra: { iteration: 2 } }]);
});

t.test('a JSON array is streamed: records before a broken tail arrive first', async (t) => {
  const p = file('broken.json', '[{"instruction": "a", "output": "b"},\n{"instruction": "c", "output": "d"},\n{"instruction": ');
  const got: string[] = [];
  await expectError(
    t,
    (async () => {
      for await (const r of readRecords(p, { skipInvalid: true })) got.push((r.record as { instruction: string }).instruction);
    })(),
    /broken\.json:3: unexpected end of file/,
  );
  t.same(got, ['a', 'c'], 'complete records were yielded before the error; structure errors are fatal even with skipInvalid');
});

t.test('missing files are ERR_IO', async (t) => {
  await expectError(t, readAllRecords(join(dir, 'none.jsonl')), /cannot open/, 'ERR_IO');
  await expectError(t, readAllRecords(dir, { format: 'jsonl' }), /cannot read/, 'ERR_IO');
});

t.test('zipRecords reads index-aligned files in lockstep and rejects different lengths', async (t) => {
  const en = file('en.jsonl', '{"instruction": "a", "output": "1"}\n{"instruction": "b", "output": "2"}\n');
  const de = file('de.json', '[{"instruction": "A", "output": "1"}, {"instruction": "B", "output": "2"}]');
  const short = file('short.jsonl', '{"instruction": "A", "output": "1"}\n');
  const rows = [];
  for await (const row of zipRecords({ en, de })) rows.push([(row.en.record as { instruction: string }).instruction, (row.de.record as { instruction: string }).instruction]);
  t.same(rows, [['a', 'A'], ['b', 'B']]);
  await expectError(
    t,
    (async () => {
      for await (const _ of zipRecords({ en, short })) void _;
    })(),
    /not index-aligned: .*short\.jsonl ended before row 1/,
  );
});
