import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { OpenAIChatClient } from '../../lib/data/endpoint';
import { runAugmentation } from '../../lib/data/run';
import { iterationPath, mergedInstruction, runSeqInstruct } from '../../lib/data/seq-instruct';
import { CLASSIFY_SYSTEM, parseNewInstruction, parseOption, REWRITE_PREFIX } from '../../lib/data/seq-instruct-prompts';
import { AlpacaRecord } from '../../lib/data/records';
import { HostRng } from '../../lib/rng';
import { testSeed } from '../helpers/random';
import { FakeAnswer, FakeRequest, startFakeLlm } from './fake-llm';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = new HostRng(seed);
const dir = mkdtempSync(join(tmpdir(), 'seqtune-seq-'));
const PREFIX_TASK = 'First list the key facts, then ';

/**
 * The fake generator: classifies by a [X] marker in the instruction (D once rewritten), rewrites by
 * adding PREFIX_TASK, answers with RESP(...). #GARBLE, #NORW and #EMPTY make each step unparseable.
 */
function generator(req: FakeRequest): FakeAnswer {
  const msgs = req.body.messages;
  const user = msgs[msgs.length - 1].content;
  if (msgs[0].content === CLASSIFY_SYSTEM) {
    const text = user.slice(user.lastIndexOf('The instruction is: "') + 21, user.lastIndexOf('". '));
    if (text.includes('#GARBLE')) return { content: 'Hard to say. It could go either way.' };
    const option = text.startsWith(PREFIX_TASK) ? 'D' : (/\[([ABCD])\]/.exec(text)?.[1] ?? 'D');
    return { content: `A. Decompose is one choice, but looking closer the best fit is clear. So the option is: ${option}.` };
  }
  if (Object.values(REWRITE_PREFIX).some((p) => user.startsWith(p))) {
    const at = user.lastIndexOf("#Original Instruction#: '") + 25;
    const text = user.slice(at, user.indexOf("' \n", at));
    if (text.includes('#NORW')) return { content: 'I would rather not.' };
    return { content: `Explanation: a prefix helps.\n#New Instruction#: ${PREFIX_TASK}${text}###` };
  }
  if (user.includes('#EMPTY')) return { content: '  ' };
  return { content: `RESP(${user})` };
}

function makeRecords(n: number): AlpacaRecord[] {
  const marks = ['[A]', '[B]', '[C]', '[D]', '[D]', '[B] #NORW', '#GARBLE', '[C] #EMPTY'];
  return Array.from({ length: n }, (_, i) => {
    const r: AlpacaRecord = { instruction: `Task ${i} ${marks[rng.int(marks.length)]}`, input: rng.uniform() < 0.5 ? `in${i}` : '', output: `orig${i}`, system_prompt: '' };
    if (i % 3 !== 0) r.idx = `id-${i}`;
    return r;
  });
}

/** What two iterations must give, computed from the rules above without the library. */
function expected(r: AlpacaRecord, i: number) {
  const idx = r.idx ?? i;
  const merged = r.input ? `${r.instruction} ${r.input}` : r.instruction;
  const resp = (instr: string) => `RESP(${r.input ? `${instr} ${r.input}` : instr})`;
  if (r.instruction.includes('#EMPTY')) return { ...r, idx };
  if (r.instruction.includes('#NORW')) return { ...r, idx, output: resp(r.instruction), option: 'B' };
  const letter = /\[([ABCD])\]/.exec(r.instruction)?.[1];
  if (!letter || letter === 'D') return { ...r, idx, output: resp(r.instruction), option: 'D' };
  const instruction = PREFIX_TASK + merged;
  return { ...r, idx, instruction, output: resp(instruction), option: 'D', strategy: 'seq-instruct' };
}

function readJsonl(p: string) {
  return readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

t.test('parsers: options and new instructions', async (t) => {
  t.equal(parseOption('A. Decompose ... B. Add ... So the option is: C.'), 'C', 'the last cue wins over an echoed option list');
  t.equal(parseOption('I pick Option b because'), 'B');
  t.equal(parseOption('The answer: D.'), 'D');
  t.equal(parseOption('we should add a suffix task here'), 'C');
  t.equal(parseOption('decomposing is best'), 'A');
  t.equal(parseOption('no idea'), null);
  t.equal(parseNewInstruction('blah #New Instruction#: x ### #NEW INSTRUCTION#: "Do it." ### tail'), 'Do it.');
  t.equal(parseNewInstruction('New instruction: “First A, then B.” Explanation: because'), 'First A, then B.');
  t.equal(parseNewInstruction('#New Instruction#: ###'), null);
  t.equal(parseNewInstruction('nothing here'), null);
  t.equal(mergedInstruction({ instruction: 'I', input: 'x', output: '', position: 'left' }), 'x I');
});

t.test('two iterations: rewrite, freeze D, count parse failures, keep failures as originals', async (t) => {
  const records = makeRecords(40);
  const input = join(dir, 'in.jsonl');
  writeFileSync(input, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const server = await startFakeLlm((req) => ({ ...generator(req), delayMs: rng.int(15) }));
  try {
    const client = new OpenAIChatClient({ endpoint: server.url, model: 'gen', concurrency: 4, backoffMs: 1 });
    const out = join(dir, 'sit.jsonl');
    const reports = await runSeqInstruct({ in: input, out, client, iterations: 2, concurrency: 4, seed: 1 });
    const rows = readJsonl(out);
    t.same(rows, records.map(expected));
    t.ok(server.maxInFlight <= 4 && server.maxInFlight >= 2, `concurrent requests ${server.maxInFlight}`);
    const count = (f: (r: AlpacaRecord) => boolean) => records.filter(f).length;
    const letter = (r: AlpacaRecord) => /\[([ABCD])\]/.exec(r.instruction)?.[1];
    const empty = (r: AlpacaRecord) => r.instruction.includes('#EMPTY');
    const garble = (r: AlpacaRecord) => r.instruction.includes('#GARBLE');
    const [r1, r2] = reports;
    t.equal(r1.file, iterationPath(out, 1, 2));
    t.equal(r1.parseFailures.classify, count(garble));
    t.equal(r1.parseFailures.rewrite, count((r) => r.instruction.includes('#NORW')));
    t.equal(r1.parseFailures.response, count(empty));
    t.equal(r1.augmented, count((r) => ['A', 'B', 'C'].includes(letter(r)!) && !r.instruction.includes('#NORW') && !empty(r)));
    t.equal(r1.options.D, count((r) => (letter(r) === 'D' || garble(r)) && !empty(r)));
    // round 2: D records of round 1 are frozen: no requests for them
    t.equal(r2.frozen, r1.options.D);
    t.same([r1.in, r1.kept, r2.in, r2.kept], [40, 40, 40, 40]);
    const classify = server.requests.filter((q) => q.body.messages[0].content === CLASSIFY_SYSTEM).length;
    t.equal(classify, 40 + (40 - r2.frozen), 'classify requests: all records in round 1, the unfrozen ones in round 2');
  } finally {
    await server.close();
  }
});

t.test('a run that stops midway resumes without duplicates or losses, even after a torn line', async (t) => {
  const records = makeRecords(30);
  const input = join(dir, 'resume-in.jsonl');
  writeFileSync(input, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const failAfter = 10 + rng.int(40);
  const broken = await startFakeLlm((req, n) => (n >= failAfter ? { status: 400, raw: '{"error": "down"}' } : generator(req)));
  const out = join(dir, 'resume.jsonl');
  try {
    const client = new OpenAIChatClient({ endpoint: broken.url, model: 'gen', concurrency: 3 });
    await t.rejects(runSeqInstruct({ in: input, out, client, iterations: 1, concurrency: 3 }), /HTTP 400/);
  } finally {
    await broken.close();
  }
  t.notOk(existsSync(out), 'nothing at the output path until the iteration is complete');
  const partial = readJsonl(`${out}.partial`).length;
  t.ok(partial < 30, `stopped after ${partial} records, kept in ${out}.partial`);
  appendFileSync(`${out}.partial`, '{"idx": "id-9999", "instruction": "torn');
  const server = await startFakeLlm(generator);
  try {
    const client = new OpenAIChatClient({ endpoint: server.url, model: 'gen', concurrency: 3 });
    const [report] = await runSeqInstruct({ in: input, out, client, iterations: 1, concurrency: 3 });
    t.equal(report.resumed, partial);
    t.equal(report.kept, 30 - partial);
    const rows = readJsonl(out);
    t.equal(rows.length, 30);
    t.notOk(existsSync(`${out}.partial`), 'the partial file became the output');
    const ids = rows.map((r) => JSON.stringify(r.idx));
    t.equal(new Set(ids).size, 30, 'every idx exactly once');
    // a third run has nothing to do
    const before = server.requests.length;
    const [again] = await runSeqInstruct({ in: input, out, client, iterations: 1 });
    t.same([again.resumed, again.kept, server.requests.length], [30, 0, before]);
    // same records as a clean run
    const clean = join(dir, 'clean.jsonl');
    await runSeqInstruct({ in: input, out: clean, client, iterations: 1, concurrency: 5 });
    t.same(rows, readJsonl(clean), 'resumed output equals a clean run');
  } finally {
    await server.close();
  }
});

t.test('the IT control regenerates responses only; duplicates and bad input are errors', async (t) => {
  const records = makeRecords(12).map((r) => ({ ...r, instruction: r.instruction.replace('#EMPTY', '') }));
  const input = join(dir, 'it.jsonl');
  writeFileSync(input, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const server = await startFakeLlm(generator);
  try {
    const out = join(dir, 'it-out.jsonl');
    const result = await runAugmentation({ in: input, out, strategies: ['direct-response'], endpoint: { endpoint: server.url, model: 'gen' }, iterations: 5 });
    t.equal(result.kind, 'seq-instruct');
    t.same(result.counts, { in: 12, augmented: 0, kept: 12, skipped: 0, truncated: 0 });
    t.same(
      readJsonl(out),
      records.map((r, i) => ({ ...r, idx: r.idx ?? i, output: `RESP(${r.input ? `${r.instruction} ${r.input}` : r.instruction})` })),
    );
    t.ok(server.requests.every((q) => q.body.messages[0].role === 'system' && q.body.messages.length === 2), 'only response requests, system turn included');
    t.match(server.requests[0].body, { temperature: 1, top_p: 0.9, top_k: 50, max_tokens: 2048 });
    const dup = join(dir, 'dup.jsonl');
    writeFileSync(dup, '{"instruction": "a", "output": "b", "idx": 1}\n{"instruction": "c", "output": "d", "idx": 1}\n');
    await t.rejects(runSeqInstruct({ in: dup, out: join(dir, 'dup-out.jsonl'), client: new OpenAIChatClient({ endpoint: server.url, model: 'g' }), overwrite: true }), /dup\.jsonl:2: duplicate idx 1/);
    await t.rejects(runSeqInstruct({ in: input, out, client: new OpenAIChatClient({ endpoint: server.url, model: 'g' }), iterations: 0 }), /positive integer/);
    await t.rejects(runAugmentation({ in: input, out, strategies: ['seq-instruct'] }), /needs an endpoint/);
    await t.rejects(runAugmentation({ in: input, out, strategies: ['seq-instruct', 'repeat'] }), /runs on its own/);
    await t.rejects(runAugmentation({ in: input, out, strategies: ['caption'] }), /needs --vqa-questions/);
  } finally {
    await server.close();
  }
});

t.test('paraphrase and translate through the endpoint', async (t) => {
  const records = makeRecords(10).map((r, i) => ({ ...r, input: `text ${i}` }));
  const input = join(dir, 'para.jsonl');
  writeFileSync(input, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const server = await startFakeLlm((req) => {
    const [system, user] = req.body.messages;
    if (system.content.startsWith('Paraphrase')) return { content: user.content.includes('text 3') ? '' : `P<${user.content}>` };
    return { content: `T[${system.content.slice(-40, -32).trim()}]<${user.content}>` };
  });
  try {
    const out = join(dir, 'para-out.jsonl');
    const result = await runAugmentation({ in: input, out, strategies: ['paraphrase'], endpoint: { endpoint: server.url, model: 'gen' } });
    t.equal(result.counts.augmented, 9, 'an empty paraphrase leaves the original');
    const rows = readJsonl(out);
    t.equal(rows[0].output, `Paraphrase:\nP<paraphrase this sentence:text 0>\nResult: orig0`);
    t.equal(rows[3].output, 'orig3');
    t.match(server.requests[0].body, { temperature: 0, max_tokens: 256 });
    await runAugmentation({ in: input, out, strategies: ['translate'], languages: ['de'], endpoint: { endpoint: server.url, model: 'gen' } });
    const tr = readJsonl(out);
    t.match(tr[0].input, /<text 0>$/);
    t.equal(tr[0].output, 'Translation into English: \ntext 0\nResult: orig0');
    t.ok(server.requests.some((q) => q.body.messages[0].content.includes('into German')));
  } finally {
    await server.close();
  }
});
