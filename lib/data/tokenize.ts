/**
 * Records → token ids with a per-token target flag, and the compact in-memory dataset the batch
 * loader draws from.
 *
 * Each segment of the prompt format is tokenized on its own (BOS before the first, the EOS id after
 * each response unless the format renders its own), so the prompt tokens in training are exactly
 * the tokens `encodePrompt` gives at generation time. A chat template (`tokenizeWhole`) is
 * tokenized as one text instead, as transformers' apply_chat_template does, and its segments only
 * mark which tokens are targets. `target[t] = 1` marks token t as something
 * the model must predict: response tokens and their EOS by default, every token but the first with
 * `trainOn: 'all'` (the v1 setup, docs/method.md §4.1). Over-length examples are truncated (their start kept) or
 * dropped by policy; an example left with no target token is dropped. All of it is counted.
 */
import { SeqtuneError } from '../errors';
import { TextTokenizer } from '../text-tokenizer';
import { SourcedRecord } from './read';
import { DataCounts, DataRecord, emptyCounts, isConversation } from './records';
import { PromptFormat, Segment } from './templates';

export interface TokenizeOptions {
  tokenizer: TextTokenizer;
  format: PromptFormat;
  /** 'response' (default): loss on assistant turns; 'all': on every token after the first */
  trainOn?: 'response' | 'all';
  /** longest example in tokens, BOS and EOS included */
  maxLength?: number;
  /** what happens to longer examples (default 'truncate') */
  overLength?: 'truncate' | 'drop';
}

export interface EncodedExample {
  ids: number[];
  /** 1 where the token is a prediction target */
  target: number[];
  truncated: boolean;
}

/**
 * Tokens of consecutive segments encoded as one text, each token tagged with the segment its text
 * starts in. A segment boundary is where the ids of the text up to it stop being a prefix of the
 * whole's (a token that straddles it belongs to the earlier segment).
 */
function encodeRun(run: Segment[], tokenizer: TextTokenizer, addBos: boolean): Array<{ id: number; seg: Segment }> {
  const whole = tokenizer.encode(run.map((s) => s.text).join(''), { addBos });
  const out: Array<{ id: number; seg: Segment }> = [];
  let text = '';
  run.forEach((seg, i) => {
    text += seg.text;
    let end = whole.length;
    if (i < run.length - 1) {
      const prefix = tokenizer.encode(text, { addBos });
      end = out.length;
      while (end < prefix.length && end < whole.length && prefix[end] === whole[end]) end++;
      // where they part, the whole's token starts inside this segment's text and spans the boundary
      if (end < prefix.length && end < whole.length) end++;
    }
    for (let k = out.length; k < end; k++) out.push({ id: whole[k], seg });
  });
  return out;
}

function encodeSegments(segments: Segment[], options: TokenizeOptions, stopBeforeLastResponse: boolean): EncodedExample {
  const { tokenizer, format } = options;
  const ids: number[] = [];
  const target: number[] = [];
  const addBos = !format.rendersBos && tokenizer.bosId !== null;
  let last = segments.length;
  if (stopBeforeLastResponse) {
    while (last > 0 && !segments[last - 1].train) last--;
    last--;
  }
  const trainAll = options.trainOn === 'all';
  const push = (id: number, train: boolean) => {
    // the first token is never a target: nothing precedes it to predict it from
    target.push(ids.length > 0 && (train || trainAll) ? 1 : 0);
    ids.push(id);
  };
  // Runs of segments tokenized together: one segment each, or (tokenizeWhole) everything up to
  // the next appended EOS id.
  let run: Segment[] = [];
  const flush = () => {
    const bos = addBos && ids.length === 0;
    if (run.every((s) => s.text === '')) {
      if (bos) push(tokenizer.bosId!, false);
    } else {
      for (const { id, seg } of encodeRun(run, tokenizer, bos)) push(id, seg.train);
    }
    run = [];
  };
  for (let i = 0; i < last; i++) {
    const seg = segments[i];
    run.push(seg);
    if (!format.tokenizeWhole || (seg.train && !format.rendersEos)) flush();
    if (seg.train && !format.rendersEos) push(tokenizer.eosId, true);
  }
  if (run.length) flush();
  return { ids, target, truncated: false };
}

/** One record as ids and target flags, or null when it is dropped (with the reason). */
export function encodeRecord(record: DataRecord, options: TokenizeOptions): { example: EncodedExample | null; reason?: 'too-long' | 'no-target' } {
  const example = encodeSegments(options.format.segments(record), options, false);
  const max = options.maxLength;
  if (max !== undefined && example.ids.length > max) {
    if (options.overLength === 'drop') return { example: null, reason: 'too-long' };
    example.ids.length = max;
    example.target.length = max;
    example.truncated = true;
  }
  if (!example.target.includes(1)) return { example: null, reason: 'no-target' };
  return { example };
}

/**
 * The prompt ids for generation: the same tokens training puts before the final response.
 * A record without a final assistant turn is prompted for one.
 */
export function encodePrompt(record: DataRecord, options: Pick<TokenizeOptions, 'tokenizer' | 'format'>): number[] {
  let withAnswer = record;
  if (isConversation(record) && record.messages[record.messages.length - 1]?.role !== 'assistant') {
    withAnswer = { ...record, messages: [...record.messages, { role: 'assistant', content: '' }] };
  }
  return encodeSegments(options.format.segments(withAnswer), { ...options, trainOn: 'response' }, true).ids;
}

/** Tokenized examples in three flat arrays (no per-example objects: 52k examples cost ~3 arrays). */
export class TokenizedDataset {
  constructor(
    /** every example's ids, back to back */
    readonly tokens: Int32Array,
    /** 1 where the token is a target */
    readonly targets: Uint8Array,
    /** example i is tokens[offsets[i], offsets[i+1]) */
    readonly offsets: Int32Array,
  ) {
    if (offsets.length < 1 || offsets[offsets.length - 1] !== tokens.length || targets.length !== tokens.length) {
      throw new SeqtuneError('inconsistent tokenized dataset arrays', 'ERR_ARGUMENT');
    }
  }

  get size(): number {
    return this.offsets.length - 1;
  }

  length(i: number): number {
    return this.offsets[i + 1] - this.offsets[i];
  }

  ids(i: number): Int32Array {
    return this.tokens.subarray(this.offsets[i], this.offsets[i + 1]);
  }

  target(i: number): Uint8Array {
    return this.targets.subarray(this.offsets[i], this.offsets[i + 1]);
  }
}

class Growable {
  tokens = new Int32Array(1 << 16);
  targets = new Uint8Array(1 << 16);
  offsets: number[] = [0];
  used = 0;

  push(example: EncodedExample): void {
    const n = example.ids.length;
    if (this.used + n > this.tokens.length) {
      const cap = Math.max(this.tokens.length * 2, this.used + n);
      const t = new Int32Array(cap);
      t.set(this.tokens.subarray(0, this.used));
      const g = new Uint8Array(cap);
      g.set(this.targets.subarray(0, this.used));
      this.tokens = t;
      this.targets = g;
    }
    this.tokens.set(example.ids, this.used);
    this.targets.set(example.target, this.used);
    this.used += n;
    this.offsets.push(this.used);
  }

  finish(): TokenizedDataset {
    return new TokenizedDataset(this.tokens.slice(0, this.used), this.targets.slice(0, this.used), Int32Array.from(this.offsets));
  }
}

export interface TokenizeReport extends DataCounts {
  dropped: { tooLong: number; noTarget: number };
}

/** Why a tokenized dataset came out empty, for the error naming its files. */
export function whyEmpty(report: TokenizeReport, maxLength: number | undefined): string {
  if (report.in === 0) return 'they hold no records';
  const parts: string[] = [];
  if (report.dropped.tooLong) parts.push(`${report.dropped.tooLong} longer than --max-length ${maxLength}`);
  if (report.dropped.noTarget) {
    parts.push(`${report.dropped.noTarget} with nothing to learn (an empty response${maxLength !== undefined ? `, or one cut off entirely by --max-length ${maxLength}` : ''})`);
  }
  return `all ${report.in} records were left out: ${parts.join(', ')}`;
}

/** Tokenizes records (in memory or streamed from readRecords) into a dataset. */
export async function tokenizeRecords(
  records: Iterable<DataRecord> | AsyncIterable<DataRecord | SourcedRecord>,
  options: TokenizeOptions,
): Promise<{ dataset: TokenizedDataset; report: TokenizeReport }> {
  if (options.maxLength !== undefined && !(Number.isInteger(options.maxLength) && options.maxLength >= 2)) {
    throw new SeqtuneError(`maxLength must be an integer >= 2, got ${options.maxLength}`, 'ERR_ARGUMENT');
  }
  const report: TokenizeReport = { ...emptyCounts(), dropped: { tooLong: 0, noTarget: 0 } };
  const out = new Growable();
  for await (const item of records as AsyncIterable<DataRecord | SourcedRecord>) {
    const record = 'record' in item && 'ordinal' in item ? item.record : (item as DataRecord);
    report.in++;
    if (record.strategy !== undefined) report.augmented++;
    const { example, reason } = encodeRecord(record, options);
    if (!example) {
      report.skipped++;
      if (reason === 'too-long') report.dropped.tooLong++;
      else report.dropped.noTarget++;
      continue;
    }
    if (example.truncated) report.truncated++;
    out.push(example);
    report.kept++;
  }
  return { dataset: out.finish(), report };
}
