/** The pipeline on the real files in ../shared/data (skipped, with the reason, when it is absent). */
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { augmentFile } from '../../lib/data/augment';
import { BatchLoader } from '../../lib/data/loader';
import { readAllRecords, readRecords } from '../../lib/data/read';
import { AlpacaRecord, isConversation } from '../../lib/data/records';
import { parseNewInstruction } from '../../lib/data/seq-instruct-prompts';
import { tuluFormat } from '../../lib/data/templates';
import { tokenizeRecords } from '../../lib/data/tokenize';
import { CharTokenizer } from './char-tokenizer';
import { shared, sharedSkip } from './shared';

const ALPACA = 'alpaca/alpaca_small_2000.json';
const dir = mkdtempSync(join(tmpdir(), 'seqtune-real-'));

t.test('the 2,000-row Alpaca sample: read streamed, repeat-augmented, tokenized and packed', { skip: sharedSkip(ALPACA) }, async (t) => {
  const raw = JSON.parse(readFileSync(shared(ALPACA), 'utf8')) as Array<{ instruction: string; input: string; output: string }>;
  const records = (await readAllRecords(shared(ALPACA))) as AlpacaRecord[];
  t.equal(records.length, raw.length);
  t.same(records.map((r) => [r.instruction, r.input, r.output]), raw.map((r) => [r.instruction, r.input, r.output]));
  const out = join(dir, 'repeat.jsonl');
  const report = await augmentFile({ in: shared(ALPACA), out, strategies: ['repeat'] });
  const withInput = raw.filter((r) => r.input.trim() !== '').length;
  t.same([report.in, report.augmented, report.kept, report.skipped], [2000, withInput, 2000, 0]);
  const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const i = raw.findIndex((r) => r.input.trim() !== '');
  t.equal(rows[i].instruction, `First repeat the input, then ${raw[i].instruction}`);
  t.equal(rows[i].output, `${raw[i].input}\n${raw[i].output}`);
  const { dataset, report: tok } = await tokenizeRecords(readRecords(out), { tokenizer: new CharTokenizer(), format: tuluFormat(), maxLength: 1024 });
  t.equal(tok.in, 2000);
  t.equal(tok.augmented, withInput);
  t.equal(tok.kept + tok.skipped, 2000);
  const longest = Math.max(...raw.map((r) => `<|user|>\n${`${r.instruction} ${r.input}`.trim()}\n<|assistant|>\n`.length + r.input.length + 1 + r.output.length + 2));
  t.ok(tok.truncated > 0 === longest > 1024, `truncated ${tok.truncated} (longest ≈ ${longest})`);
  const loader = new BatchLoader(dataset, { tokenBudget: 1024, seed: 1 });
  let docs = 0;
  for (const b of loader.epochBatches()) docs += b.numDocuments;
  t.equal(docs, dataset.size);
});

const SEQ_EVAL = 'seqins_seqeval/seqEval.json';
t.test('SeqEval reads as 805 instructions without outputs', { skip: sharedSkip(SEQ_EVAL) }, async (t) => {
  const records = (await readAllRecords(shared(SEQ_EVAL), { requireOutput: false })) as AlpacaRecord[];
  t.equal(records.length, 805);
  t.ok(records.every((r) => typeof r.extra?.iteration === 'number'));
  await t.rejects(readAllRecords(shared(SEQ_EVAL)), /seqEval\.json:2: record has no 'output'/);
});

const PIPELINE = 'seq_it_eval/sit_generation_pipeline/alpaca/alpaca-cleaned-gpt-3.5-turbo-generate_instruct-refine-response-final.jsonl';
t.test("the authors' pipeline samples: our parser recovers their extracted instructions", { skip: sharedSkip(PIPELINE) }, async (t) => {
  let compared = 0;
  let agree = 0;
  for await (const { record } of readRecords(shared(PIPELINE), { requireOutput: false })) {
    const r = record as AlpacaRecord;
    const completion = r.extra?.new_instruction;
    const theirs = r.extra?.extracted_instruction;
    if (r.option === 'D' || typeof completion !== 'string' || typeof theirs !== 'string' || !/new instruction/i.test(completion)) continue;
    compared++;
    const ours = parseNewInstruction(completion);
    const norm = (s: string) => s.replace(/["'“”\s]/g, '');
    if (ours !== null && norm(ours) === norm(theirs)) agree++;
  }
  t.ok(compared >= 20, `${compared} rewritten samples`);
  t.ok(agree / compared >= 0.9, `${agree}/${compared} agree with the authors' extraction`);
});

const XQUAD = 'seq_it_eval/test/xquad_trans_vi.json';
t.test('XQuAD eval sets and the seq-IT samples read as Alpaca records', { skip: sharedSkip(XQUAD, 'seq_it_eval/seq_it_samples/seq-it-Llama-2-7b-hf.jsonl') }, async (t) => {
  const xquad = (await readAllRecords(shared(XQUAD))) as AlpacaRecord[];
  t.equal(xquad.length, 1190);
  t.match(xquad[0].instruction, /^First, translate the input into English/);
  const samples = await readAllRecords(shared('seq_it_eval/seq_it_samples/seq-it-Llama-2-7b-hf.jsonl'));
  t.equal(samples.length, 224);
  t.notOk(samples.some(isConversation));
});
