/**
 * The Seq-Instruct pipeline (docs/method.md §2) against an OpenAI-compatible endpoint: per record, classify
 * (A decompose / B prefix / C suffix / D keep), rewrite for A–C, and regenerate the response to the
 * final instruction; iterations feed each round's output to the next with "D" records frozen. The
 * IT control (`directResponse`) regenerates responses for the unmodified instructions.
 *
 * Runs are resumable: output is written in input order, keyed by `idx` (the input's, or the record's
 * position when it has none), and a rerun skips the keys already written and cuts a half-written
 * last line. A request that still fails after the client's retries stops the run (rerun to continue);
 * an unparseable answer is counted and the record kept as it was.
 *
 * Authors' bugs fixed rather than copied (docs/method.md §9):
 * - item 6: the rewrite prompt always carries the instruction text, with or without input;
 * - items 1, 2, 5: the missing post-processing (process_multi_it) and broken file chaining are
 *   done here (iteration files `<out>.iter<k>.jsonl`, the last iteration writes `<out>`);
 * - items 3, 11: the API key comes only from an environment variable (endpoint.ts);
 * - the classification parser takes the last cue and reports failures instead of silently
 *   choosing D (they are still treated as D, the paper's fallback, and counted).
 */
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { ChatClient, ChatRequest } from './endpoint';
import { orderedMap } from './concurrency';
import { readRecords, SourcedRecord } from './read';
import { AlpacaRecord, asAlpaca, DataCounts, DataRecord, emptyCounts, requireKept, SeqOption } from './records';
import { classifyMessages, parseNewInstruction, parseOption, rewriteMessages } from './seq-instruct-prompts';
import { JsonlWriter, scanExistingOutput } from './write';

export type Sampling = Omit<ChatRequest, 'messages'>;

/** docs/method.md §2 "Sampling": the released scripts' settings for every step. */
export const PAPER_SAMPLING: Sampling = { temperature: 1.0, top_p: 0.9, top_k: 50, max_tokens: 2048 };

export interface SeqInstructContext {
  client: ChatClient;
  /** seeds the few-shot order of this record's prompts */
  rng: HostRng;
  sampling?: Sampling;
}

export type StepOutcome = 'rewritten' | 'kept' | 'frozen' | 'classify-failed' | 'rewrite-failed' | 'response-failed' | 'passthrough';

export interface SeqInstructResult {
  record: DataRecord;
  outcome: StepOutcome;
  option?: SeqOption;
}

/** The instruction and input as one text: input after the instruction unless `position` is 'left'. */
export function mergedInstruction(record: AlpacaRecord): string {
  if (record.input === '') return record.instruction;
  return record.position === 'left' ? `${record.input} ${record.instruction}` : `${record.instruction} ${record.input}`;
}

async function respond(record: AlpacaRecord, instruction: string, ctx: SeqInstructContext): Promise<string | null> {
  const user = record.input !== '' ? `${instruction} ${record.input}` : instruction;
  // the paper sends the system turn even when it is empty (docs/method.md §2 step 4)
  const text = await ctx.client.complete({ messages: [{ role: 'system', content: record.system_prompt ?? '' }, { role: 'user', content: user }], ...(ctx.sampling ?? PAPER_SAMPLING) });
  return text.trim() === '' ? null : text.trim();
}

/** One Seq-Instruct round for one record. Records already marked D are returned unchanged. */
export async function seqInstructRound(input: DataRecord, ctx: SeqInstructContext): Promise<SeqInstructResult> {
  const record = asAlpaca(input);
  if (!record) return { record: input, outcome: 'passthrough' };
  if (record.option === 'D') return { record, outcome: 'frozen', option: 'D' };
  const sampling = ctx.sampling ?? PAPER_SAMPLING;
  const classification = await ctx.client.complete({ messages: classifyMessages(mergedInstruction(record), ctx.rng), ...sampling });
  const parsed = parseOption(classification);
  const option: SeqOption = parsed ?? 'D';
  let instruction = record.instruction;
  let outcome: StepOutcome = parsed ? 'kept' : 'classify-failed';
  if (option !== 'D') {
    // the rewrite sees the instruction with its input merged in, so the input is never left out
    const rewritten = parseNewInstruction(await ctx.client.complete({ messages: rewriteMessages(option, mergedInstruction(record), ctx.rng), ...sampling }));
    if (rewritten) {
      instruction = rewritten;
      outcome = 'rewritten';
    } else outcome = 'rewrite-failed';
  }
  const output = await respond(record, instruction, ctx);
  if (output === null) return { record, outcome: 'response-failed' };
  const out: AlpacaRecord = { ...record, instruction, output, option };
  if (outcome === 'rewritten') out.strategy = 'seq-instruct';
  return { record: out, outcome, option };
}

/** The IT control: the same record with a regenerated response to its unmodified instruction. */
export async function directResponse(input: DataRecord, ctx: SeqInstructContext): Promise<SeqInstructResult> {
  const record = asAlpaca(input);
  if (!record) return { record: input, outcome: 'passthrough' };
  const output = await respond(record, record.instruction, ctx);
  return output === null ? { record, outcome: 'response-failed' } : { record: { ...record, output }, outcome: 'kept' };
}

export interface SeqInstructOptions {
  in: string;
  out: string;
  client: ChatClient;
  /** rounds of classify → rewrite → respond (default 2, as in the released data) */
  iterations?: number;
  /** the IT control instead of Seq-Instruct (one round) */
  directResponse?: boolean;
  /** records in flight at once (default 8) */
  concurrency?: number;
  seed?: number;
  sampling?: Sampling;
  skipInvalid?: boolean;
  /** restart from scratch instead of resuming (default false) */
  overwrite?: boolean;
  onProgress?: (report: IterationReport) => void;
}

export interface IterationReport extends DataCounts {
  iteration: number;
  file: string;
  /** records found already written by an earlier run */
  resumed: number;
  frozen: number;
  passthrough: number;
  options: Record<SeqOption, number>;
  parseFailures: { classify: number; rewrite: number; response: number };
}

/** Where iteration k of `iterations` writes (1-based). */
export function iterationPath(out: string, k: number, iterations: number): string {
  return k === iterations ? out : `${out.replace(/\.jsonl$/, '')}.iter${k}.jsonl`;
}

function keyOf(idx: unknown): string {
  return JSON.stringify(idx);
}

/** 32-bit FNV-1a: a per-record seed that does not depend on scheduling order. */
function hash32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function withIdx(source: SourcedRecord): DataRecord {
  return source.record.idx !== undefined ? source.record : { ...source.record, idx: source.ordinal };
}

async function runIteration(options: SeqInstructOptions, k: number, iterations: number, input: string): Promise<IterationReport> {
  const file = iterationPath(options.out, k, iterations);
  const report: IterationReport = {
    ...emptyCounts(),
    iteration: k,
    file,
    resumed: 0,
    frozen: 0,
    passthrough: 0,
    options: { A: 0, B: 0, C: 0, D: 0 },
    parseFailures: { classify: 0, rewrite: 0, response: 0 },
  };
  // The iteration grows in `<file>.partial` (resumable work, named as such) and becomes `file` when
  // complete; a rerun over a finished iteration scans it as a partial one (and finds all done).
  const partial = `${file}.partial`;
  if (options.overwrite) await rm(partial, { force: true });
  else if (!existsSync(partial) && existsSync(file)) await rename(file, partial);
  const done = options.overwrite ? new Set<string>() : (await scanExistingOutput(partial, (v) => (v.idx === undefined ? undefined : keyOf(v.idx)))).keys;
  const seen = new Set<string>();
  const seed = options.seed ?? 0;
  async function* todo(): AsyncGenerator<DataRecord> {
    for await (const source of readRecords(input, { skipInvalid: options.skipInvalid, counts: report })) {
      const record = withIdx(source);
      const key = keyOf(record.idx);
      if (seen.has(key)) throw new SeqtuneError(`${input}:${source.line}: duplicate idx ${key}; resuming needs unique idx values`, 'ERR_DATA');
      seen.add(key);
      if (done.has(key)) report.resumed++;
      else yield record;
    }
  }
  const writer = await JsonlWriter.open(partial, { append: true });
  try {
    const results = orderedMap(todo(), options.concurrency ?? 8, (record) => {
      const ctx = { client: options.client, sampling: options.sampling, rng: new HostRng(hash32(`${keyOf(record.idx)}|${k}`, seed)) };
      return options.directResponse ? directResponse(record, ctx) : seqInstructRound(record, ctx);
    });
    for await (const result of results) {
      await writer.write(result.record);
      report.kept++;
      if (result.option) report.options[result.option]++;
      switch (result.outcome) {
        case 'rewritten':
          report.augmented++;
          break;
        case 'frozen':
          report.frozen++;
          break;
        case 'passthrough':
          report.passthrough++;
          break;
        case 'classify-failed':
          report.parseFailures.classify++;
          break;
        case 'rewrite-failed':
          report.parseFailures.rewrite++;
          break;
        case 'response-failed':
          report.parseFailures.response++;
          break;
      }
    }
    if (k === 1) requireKept(input, { ...report, kept: report.kept + report.resumed });
  } finally {
    await writer.close();
  }
  await rename(partial, file);
  return report;
}

/** Runs (or resumes) the pipeline; returns one report per iteration. */
export async function runSeqInstruct(options: SeqInstructOptions): Promise<IterationReport[]> {
  const iterations = options.directResponse ? 1 : (options.iterations ?? 2);
  if (!Number.isInteger(iterations) || iterations < 1) throw new SeqtuneError(`iterations must be a positive integer, got ${iterations}`, 'ERR_ARGUMENT');
  const reports: IterationReport[] = [];
  let input = options.in;
  for (let k = 1; k <= iterations; k++) {
    const report = await runIteration(options, k, iterations, input);
    reports.push(report);
    options.onProgress?.(report);
    input = report.file;
  }
  return reports;
}
