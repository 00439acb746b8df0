/**
 * The SeqEval judge over real HTTP against a fake OpenAI-compatible server: verdicts, refusals,
 * malformed replies, HTTP errors, slow answers and retries are all counted; the key never leaks;
 * a rerun only retries failed requests; the pairwise win rate is judged in both orders.
 */
import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JUDGE_KEY_ENV, JudgeClient } from '../../lib/eval/judge/client';
import { judgeSeqEval, formatJudgeSummary } from '../../lib/eval/judge/seqeval-judge';
import { parseFollowVerdict } from '../../lib/eval/judge/verdicts';
import { FakeJudge } from './fake-judge';

const KEY = 'sk-test-SECRET-4242';

/** [tag, depth] per item, with the outcome worked out by hand in the test below. */
const CASES: [string, number][] = [
  ['followed', 1], // 0 followed
  ['not-followed', 1], // 1 not followed
  ['out-of-order', 2], // 2 not followed
  ['refusal-field', 2], // 3 refused
  ['refusal-text', 2], // 4 refused
  ['filter', 3], // 5 refused
  ['no-json', 3], // 6 malformed
  ['count-mismatch', 3], // 7 malformed
  ['bad-type', 3], // 8 malformed
  ['http-400', 4], // 9 error, 1 attempt
  ['http-500-once', 4], // 10 followed on attempt 2
  ['http-500-always', 4], // 11 error after 3 attempts
  ['slow-once', 4], // 12 followed on attempt 2 (1 timeout)
  ['slow-always', 4], // 13 error, timed out 3 times
  ['echo-key', 4], // 14 error (401), the echoed key masked
  ['429', 1], // 15 followed on attempt 2
  ['flaky-phase', 1], // 16 error in phase 1, followed in phase 2
];

function writeSeqEval(dir: string, cases: [string, number][]): string {
  const file = join(dir, 'seqEval.json');
  writeFileSync(file, JSON.stringify(cases.map(([tag, depth], i) => ({ instruction: `[${tag}] Item ${i}: answer the question, then summarise the answer.`, iteration: depth }))));
  return file;
}

function allFilesText(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => readFileSync(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name), 'utf8'))
    .join('\n');
}

t.test('following verdicts, refusals, malformed replies, errors and slow answers are counted', async (t) => {
  const server = new FakeJudge();
  const endpoint = await server.start();
  t.teardown(() => server.stop());
  const previousKey = process.env[JUDGE_KEY_ENV];
  process.env[JUDGE_KEY_ENV] = KEY;
  t.teardown(() => {
    if (previousKey === undefined) delete process.env[JUDGE_KEY_ENV];
    else process.env[JUDGE_KEY_ENV] = previousKey;
  });
  const dir = t.testdir({});
  const data = writeSeqEval(dir, CASES);
  const preds = join(dir, 'preds.jsonl');
  writeFileSync(preds, CASES.map((_, i) => JSON.stringify({ id: i, output: i === 0 ? 'Answer: 4. Summary: {{instruction}} four.' : `output ${i}` })).join('\n'));
  const outDir = join(dir, 'judged');
  const options = { dataFile: data, predictionsFile: preds, outDir, endpoint, model: 'judge-x', concurrency: 3, maxRetries: 2, timeoutMs: 1000, backoffMs: 5 };

  const s = await judgeSeqEval(options);
  t.same(s.follow.overall, { n: 17, followed: 4, notFollowed: 2, refused: 3, malformed: 3, errors: 5, timedOut: 1, followRate: 4 / 6, followRateOfAll: 4 / 17 });
  t.same(s.follow.groups['depth-1'], { n: 4, followed: 2, notFollowed: 1, refused: 0, malformed: 0, errors: 1, timedOut: 0, followRate: 2 / 3, followRateOfAll: 0.5 });
  t.same(s.follow.groups['depth-3'], { n: 4, followed: 0, notFollowed: 0, refused: 1, malformed: 3, errors: 0, timedOut: 0, followRate: null, followRateOfAll: 0 });
  t.same(s.requests, { requests: 26, retries: 9, timeouts: 4 });
  t.equal(s.pairwise, null);
  t.ok(server.maxInFlight >= 2 && server.maxInFlight <= 3, `at most 3 requests in flight (saw ${server.maxInFlight})`);
  t.match(formatJudgeSummary(s), /overall\s+following rate 66\.7% of judged \(23\.5% of all 17\); followed 4, not 2, refused 3, malformed 3, errors 5 \(timeouts 1\)/);

  const first = server.seen.find((r) => r.tag === 'followed')!;
  t.equal(first.path, '/v1/chat/completions');
  t.same([first.body.model, first.body.temperature, first.body.messages.map((m) => m.role)], ['judge-x', 0, ['system', 'user']]);
  t.match(first.body.messages[1].content, '<instruction>\n[followed] Item 0: answer the question, then summarise the answer.\n</instruction>');
  t.match(first.body.messages[1].content, '<response>\nAnswer: 4. Summary: {{instruction}} four.\n</response>', 'a placeholder inside a value is not filled');
  t.ok(server.seen.every((r) => r.authorization === `Bearer ${KEY}`), 'the key from the environment is sent');

  const log = readFileSync(join(outDir, 'judge.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const byId = new Map(log.map((r) => [r.id, r]));
  t.match(byId.get('0'), { kind: 'follow', status: 'followed', attempts: 1, subInstructions: ['Answer the question.', 'Summarise the answer.'] });
  t.match(byId.get('7'), { status: 'malformed', reason: 'lists 2 sub-instructions but gives 1 step verdicts' });
  t.match(byId.get('3'), { status: 'refused', reason: /I cannot evaluate/ });
  t.match(byId.get('13'), { status: 'error', timedOut: true, attempts: 3, reason: 'no answer within 1000 ms' });
  t.match(byId.get('11'), { status: 'error', timedOut: false, attempts: 3, reason: /HTTP 503/ });
  t.match(byId.get('14'), { status: 'error', attempts: 1, reason: /Bearer \[redacted\]/ });
  t.notOk(allFilesText(outDir).includes(KEY), 'the key is in no file written');
  t.notOk(formatJudgeSummary(s).includes(KEY));

  // a rerun asks again only where the request failed
  server.phase = 2;
  const before = server.seen.length;
  const again = await judgeSeqEval(options);
  t.same([...new Set(server.tagsSeen().slice(before))].sort(), ['echo-key', 'flaky-phase', 'http-400', 'http-500-always', 'slow-always']);
  t.same(again.follow.overall, { n: 17, followed: 5, notFollowed: 2, refused: 3, malformed: 3, errors: 4, timedOut: 1, followRate: 5 / 7, followRateOfAll: 5 / 17 });
  t.same(again.requests, { requests: 9, retries: 4, timeouts: 3 });
  const third = server.seen.length;
  await judgeSeqEval({ ...options, limit: 9 });
  t.equal(server.seen.length, third, 'no request when every item within the limit has a verdict');
});

t.test('pairwise win rate against reference outputs, judged in both orders', async (t) => {
  const server = new FakeJudge();
  const endpoint = await server.start();
  t.teardown(() => server.stop());
  const dir = t.testdir({});
  const cases: [string, number][] = [
    ['pair-fair', 1], // model GOOD: wins in both orders
    ['pair-fair', 1], // reference GOOD: loses in both
    ['pair-fair', 2], // neither: tie in both
    ['pair-biased', 2], // the judge always says A: one win, one loss -> tie, inconsistent
    ['pair-bad', 2], // winner "C": malformed twice
  ];
  const data = writeSeqEval(dir, cases);
  const write = (name: string, outputs: string[]) => {
    writeFileSync(join(dir, name), outputs.map((output, id) => JSON.stringify({ id, output })).join('\n'));
    return join(dir, name);
  };
  const preds = write('model.jsonl', ['GOOD answer', 'meh', 'meh', 'x', 'x']);
  const ref = write('ref.jsonl', ['meh', 'GOOD reference', 'meh', 'y', 'y']);
  const s = await judgeSeqEval({ dataFile: data, predictionsFile: preds, referenceFile: ref, outDir: join(dir, 'out'), endpoint, model: 'judge-x', backoffMs: 5 });
  t.same(s.pairwise!.overall, { n: 5, valid: 4, wins: 1, losses: 1, ties: 2, inconsistent: 1, refused: 0, malformed: 2, errors: 0, winRate: 0.5 });
  t.same(s.pairwise!.groups['depth-1'], { n: 2, valid: 2, wins: 1, losses: 1, ties: 0, inconsistent: 0, refused: 0, malformed: 0, errors: 0, winRate: 0.5 });
  t.equal(s.follow.overall.followed, 5, 'the follow verdict is asked for as well');
  const pairs = server.seen.filter((r) => r.pairwise && r.body.messages[1].content.includes('Item 0:'));
  t.equal(pairs.length, 2);
  const shown = pairs.map((r) => /<response_a>\n([\s\S]*?)\n<\/response_a>/.exec(r.body.messages[1].content)![1]).sort();
  t.same(shown, ['GOOD answer', 'meh'], 'the model is response A once and response B once');
  t.match(formatJudgeSummary(s), /not the paper's reward-model win rate/);
});

t.test('reply parsing: lists, numbering and JSON placement', async (t) => {
  const reply = (content: string) => ({ content, refusal: null, finishReason: 'stop' });
  const json = '{"steps": [{"step": 1, "carried_out": true, "in_order": true}, {"step": 2, "carried_out": true, "in_order": true}]}';
  t.match(parseFollowVerdict(reply(`Sub-instructions:\n1. A\n2. B\n\nDiscussion:\n1. first point\n2. second\n3. third\n${json}`)), { status: 'followed', subInstructions: ['A', 'B'] }, 'numbering after the list does not extend it');
  t.match(parseFollowVerdict(reply(`1) A\n2) B\n${json}`)), { status: 'followed' }, 'heading optional');
  t.match(parseFollowVerdict(reply(`Sub-instructions:\n**1.** A\n**2.** B\n\`\`\`json\n${json}\n\`\`\`\nignored {"steps": "x"`)), { status: 'followed' });
  t.match(parseFollowVerdict(reply(`Sub-instructions:\n1. A\n2. B\n{"steps": [{"step": 2, "carried_out": true, "in_order": true}, {"step": 1, "carried_out": true, "in_order": true}]}`)), { status: 'malformed', reason: /step 1 is not/ });
  t.match(parseFollowVerdict(reply('Sub-instructions:\n1. A\n{"steps": []}')), { status: 'malformed', reason: /non-empty array/ });
  t.match(parseFollowVerdict(reply(`${json}`)), { status: 'malformed', reason: 'lists 0 sub-instructions but gives 2 step verdicts' });
  t.match(parseFollowVerdict(reply('As an AI, I will not judge this.')), { status: 'refused' });
  t.match(parseFollowVerdict(reply('')), { status: 'malformed' });
});

t.test('client: endpoint forms, options, no key, bad bodies', async (t) => {
  const server = new FakeJudge();
  const endpoint = await server.start();
  t.teardown(() => server.stop());
  const saved = process.env[JUDGE_KEY_ENV];
  delete process.env[JUDGE_KEY_ENV];
  t.teardown(() => {
    if (saved !== undefined) process.env[JUDGE_KEY_ENV] = saved;
  });
  const client = new JudgeClient({ endpoint: `${endpoint}/chat/completions`, model: 'm', maxRetries: 1, backoffMs: 1 });
  t.equal(client.url, `${endpoint}/chat/completions`);
  const ok = await client.complete([{ role: 'user', content: '[followed] hi' }]);
  t.match(ok, { kind: 'reply', attempts: 1 });
  t.equal(server.seen.at(-1)!.authorization, undefined, 'no key, no Authorization header');
  t.match(await client.complete([{ role: 'user', content: '[not-json] hi' }]), { kind: 'error', attempts: 2, message: /without a chat completion/ });
  t.equal(new JudgeClient({ endpoint: `${endpoint}/`, model: 'm' }).url, `${endpoint}/chat/completions`);
  t.throws(() => new JudgeClient({ endpoint: 'not a url', model: 'm' }), { code: 'ERR_ARGUMENT' });
  t.throws(() => new JudgeClient({ endpoint: 'ftp://x', model: 'm' }), { code: 'ERR_ARGUMENT' });
  t.throws(() => new JudgeClient({ endpoint, model: '' }), { code: 'ERR_ARGUMENT', message: /--judge-model/ });
  t.throws(() => new JudgeClient({ endpoint, model: 'm', concurrency: 0 }), { code: 'ERR_ARGUMENT' });
  const closed = new JudgeClient({ endpoint: 'http://127.0.0.1:9/v1', model: 'm', maxRetries: 0 });
  t.match(await closed.complete([{ role: 'user', content: 'x' }]), { kind: 'error', timedOut: false, attempts: 1, message: /request failed/ });
});
