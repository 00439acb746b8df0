/**
 * The record types the data pipeline reads and writes, their validation, and the run counts.
 *
 * Three input layouts are accepted and validated here:
 * - Alpaca: `{instruction, input?, output, system_prompt?, idx?}` (SeqIns adds `system_prompt` and `idx`);
 * - ShareGPT: `{conversations: [{from, value}]}` with from ∈ human/user, gpt/assistant/gpt-mt, system;
 * - chat: `{messages: [{role, content}]}` with role ∈ system/user/assistant.
 * ShareGPT and chat records both become a ConversationRecord.
 */
import { SeqtuneError } from '../errors';

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

/** The SeqIns options: decompose, prefix task, suffix task, keep (docs/method.md §2 step 1). */
export type SeqOption = 'A' | 'B' | 'C' | 'D';

export interface AlpacaRecord {
  instruction: string;
  input: string;
  output: string;
  system_prompt?: string;
  idx?: number | string;
  /** set by seq-instruct; 'D' freezes the record in later iterations */
  option?: SeqOption;
  /** 'left': input before the instruction when they are merged into one text; 'right': after */
  position?: 'left' | 'right';
  /** language of the record's text, set by the translate strategies */
  lang?: string;
  /** which augmentation produced the record (absent on originals) */
  strategy?: string;
  /** fields the reader did not recognise, written back unchanged */
  extra?: Record<string, unknown>;
}

export interface ConversationRecord {
  /** system messages may only come first */
  messages: ChatMessage[];
  idx?: number | string;
  lang?: string;
  strategy?: string;
  extra?: Record<string, unknown>;
}

export type DataRecord = AlpacaRecord | ConversationRecord;

export function isConversation(record: DataRecord): record is ConversationRecord {
  return Array.isArray((record as ConversationRecord).messages);
}

/**
 * What every run reports. `in`: records read; `augmented`: augmented records produced;
 * `kept`: records in the output (originals and augmented); `skipped`: records left out (invalid,
 * or dropped by a policy); `truncated`: records shortened to fit a length limit.
 */
export interface DataCounts {
  in: number;
  augmented: number;
  kept: number;
  skipped: number;
  truncated: number;
}

export function emptyCounts(): DataCounts {
  return { in: 0, augmented: 0, kept: 0, skipped: 0, truncated: 0 };
}

/**
 * Refuses to produce an empty output: an input with no records, or whose every record was invalid,
 * is a mistake (a wrong file, a wrong format) that an empty file with exit 0 would hide.
 */
export function requireKept(input: string, counts: DataCounts): void {
  if (counts.kept > 0) return;
  const why =
    counts.in === 0
      ? 'it has no records (the file is empty)'
      : counts.skipped >= counts.in
        ? `all ${counts.in} records were invalid and skipped`
        : `none of its ${counts.in} records produced output`;
  throw new SeqtuneError(`${input}: nothing to write, ${why}; no output was written`, 'ERR_DATA');
}

/** Where a record came from, for error messages: `file:line`. */
export interface Origin {
  file: string;
  line: number;
}

export function dataError(origin: Origin, reason: string): SeqtuneError {
  return new SeqtuneError(`${origin.file}:${origin.line}: ${reason}`, 'ERR_DATA');
}

const ALPACA_KEYS = new Set(['instruction', 'input', 'output', 'system_prompt', 'idx', 'option', 'position', 'lang', 'strategy']);
const CONVERSATION_KEYS = new Set(['messages', 'conversations', 'idx', 'lang', 'strategy']);
const SHAREGPT_ROLES: Record<string, Role> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  // v3 translate-then-predict data marks its machine-translated assistant turns this way (docs/method.md §1.3)
  'gpt-mt': 'assistant',
  assistant: 'assistant',
  system: 'system',
};

export interface ParseOptions {
  /** Alpaca records without `output` are errors unless this is false (eval sets such as SeqEval have none) */
  requireOutput?: boolean;
}

function extraFields(obj: Record<string, unknown>, known: Set<string>): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined;
  for (const key of Object.keys(obj)) {
    if (!known.has(key)) (extra ??= {})[key] = obj[key];
  }
  return extra;
}

function optionalString(obj: Record<string, unknown>, key: string, origin: Origin): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw dataError(origin, `field '${key}' must be a string, got ${typeof v}`);
  return v;
}

function parseIdx(obj: Record<string, unknown>, origin: Origin): number | string | undefined {
  const v = obj.idx;
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return v;
  throw dataError(origin, `field 'idx' must be a number or a string`);
}

function parseMessages(list: unknown, origin: Origin, sharegpt: boolean): ChatMessage[] {
  const field = sharegpt ? 'conversations' : 'messages';
  if (!Array.isArray(list) || list.length === 0) throw dataError(origin, `'${field}' must be a non-empty array`);
  const messages: ChatMessage[] = [];
  list.forEach((m, i) => {
    if (typeof m !== 'object' || m === null) throw dataError(origin, `${field}[${i}] is not an object`);
    const o = m as Record<string, unknown>;
    const rawRole = sharegpt ? o.from : o.role;
    const content = sharegpt ? o.value : o.content;
    const role = typeof rawRole === 'string' ? (sharegpt ? SHAREGPT_ROLES[rawRole] : (['system', 'user', 'assistant'].includes(rawRole) ? (rawRole as Role) : undefined)) : undefined;
    if (!role) throw dataError(origin, `${field}[${i}] has an unknown ${sharegpt ? 'from' : 'role'} '${String(rawRole)}'`);
    if (typeof content !== 'string') throw dataError(origin, `${field}[${i}] has no string ${sharegpt ? 'value' : 'content'}`);
    if (role === 'system' && messages.some((p) => p.role !== 'system')) throw dataError(origin, `${field}[${i}]: a system message may only come first`);
    messages.push({ role, content });
  });
  return messages;
}

/** Validates one parsed JSON value as a record; throws ERR_DATA with origin and reason. */
export function parseRecord(value: unknown, origin: Origin, options: ParseOptions = {}): DataRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw dataError(origin, 'record is not a JSON object');
  const obj = value as Record<string, unknown>;
  if ('conversations' in obj || 'messages' in obj) {
    const sharegpt = 'conversations' in obj;
    const record: ConversationRecord = { messages: parseMessages(sharegpt ? obj.conversations : obj.messages, origin, sharegpt) };
    const idx = parseIdx(obj, origin);
    if (idx !== undefined) record.idx = idx;
    const lang = optionalString(obj, 'lang', origin);
    if (lang !== undefined) record.lang = lang;
    const strategy = optionalString(obj, 'strategy', origin);
    if (strategy !== undefined) record.strategy = strategy;
    const extra = extraFields(obj, CONVERSATION_KEYS);
    if (extra) record.extra = extra;
    return record;
  }
  const instruction = optionalString(obj, 'instruction', origin);
  if (instruction === undefined) throw dataError(origin, "record has none of 'instruction', 'conversations', 'messages'");
  const output = optionalString(obj, 'output', origin);
  if (output === undefined && options.requireOutput !== false) throw dataError(origin, "record has no 'output'");
  const record: AlpacaRecord = { instruction, input: optionalString(obj, 'input', origin) ?? '', output: output ?? '' };
  const system = optionalString(obj, 'system_prompt', origin);
  if (system !== undefined) record.system_prompt = system;
  const idx = parseIdx(obj, origin);
  if (idx !== undefined) record.idx = idx;
  const option = optionalString(obj, 'option', origin);
  if (option !== undefined) {
    if (!['A', 'B', 'C', 'D'].includes(option)) throw dataError(origin, `field 'option' must be A, B, C or D, got '${option}'`);
    record.option = option as SeqOption;
  }
  const position = optionalString(obj, 'position', origin);
  // SeqIns also writes 'random' when it could not tell; that means no preference
  if (position === 'left' || position === 'right') record.position = position;
  const lang = optionalString(obj, 'lang', origin);
  if (lang !== undefined) record.lang = lang;
  const strategy = optionalString(obj, 'strategy', origin);
  if (strategy !== undefined) record.strategy = strategy;
  const extra = extraFields(obj, ALPACA_KEYS);
  if (extra) record.extra = extra;
  return record;
}

/** The JSON object written for a record: unknown fields first, then the known ones. */
export function recordToJson(record: DataRecord): Record<string, unknown> {
  const { extra, ...known } = record;
  const out: Record<string, unknown> = { ...(extra ?? {}) };
  for (const [k, v] of Object.entries(known)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * A single-turn conversation (optional system, one user, one assistant message) as an Alpaca
 * record, so the augmentation strategies can apply to it; other conversations give null.
 */
export function asAlpaca(record: DataRecord): AlpacaRecord | null {
  if (!isConversation(record)) return record;
  const m = record.messages;
  const sys = m[0]?.role === 'system' ? m[0] : undefined;
  const rest = sys ? m.slice(1) : m;
  if (rest.length !== 2 || rest[0].role !== 'user' || rest[1].role !== 'assistant') return null;
  const out: AlpacaRecord = { instruction: rest[0].content, input: '', output: rest[1].content };
  if (sys) out.system_prompt = sys.content;
  if (record.idx !== undefined) out.idx = record.idx;
  if (record.lang !== undefined) out.lang = record.lang;
  if (record.extra) out.extra = record.extra;
  return out;
}
