/**
 * Reading the judge's replies into verdicts (rules in lib/eval/prompts/README.md). A reply that
 * does not match the requested form is `malformed` and a declined one `refused`; neither is ever
 * turned into a pass or a fail.
 */

export interface JudgeReply {
  content: string;
  refusal: string | null;
  finishReason: string | null;
}

export interface StepVerdict {
  step: number;
  carriedOut: boolean;
  inOrder: boolean;
}

export type FollowVerdict =
  | { status: 'followed' | 'not-followed'; subInstructions: string[]; steps: StepVerdict[] }
  | { status: 'refused' | 'malformed'; reason: string };

export type PairVerdict = { status: 'A' | 'B' | 'tie' } | { status: 'refused' | 'malformed'; reason: string };

const REFUSAL_OPENING = /^\s*(i['’]m sorry|i am sorry|sorry,|i cannot|i can['’]t|i can not|i won['’]t|i will not|i['’]m unable|i am unable|i['’]m not able|i am not able|as an ai\b)/i;

function apiRefusal(reply: JudgeReply): string | null {
  if (reply.refusal) return `refusal: ${reply.refusal.slice(0, 200)}`;
  if (reply.finishReason === 'content_filter') return 'finish_reason content_filter';
  return null;
}

/** The end of the balanced {...} that opens at `start`, skipping braces inside strings; -1 if none. */
function objectEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  let escape = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escape) escape = false;
      else if (c === '\\') escape = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

/** The last JSON object in the text that has `key`, and where it starts. */
function lastJsonWith(text: string, key: string): { value: Record<string, unknown>; start: number } | null {
  for (let start = text.lastIndexOf('{'); start !== -1; start = start === 0 ? -1 : text.lastIndexOf('{', start - 1)) {
    const end = objectEnd(text, start);
    if (end === -1) continue;
    try {
      const value: unknown = JSON.parse(text.slice(start, end + 1));
      if (typeof value === 'object' && value !== null && !Array.isArray(value) && key in value) return { value: value as Record<string, unknown>, start };
    } catch {
      // not JSON at this brace: keep looking further left
    }
  }
  return null;
}

function noVerdict(reply: JudgeReply): { status: 'refused' | 'malformed'; reason: string } {
  return REFUSAL_OPENING.test(reply.content) ? { status: 'refused', reason: `declined: ${reply.content.trim().slice(0, 200)}` } : { status: 'malformed', reason: 'no JSON verdict in the reply' };
}

/** Numbered lines under "Sub-instructions:" (or anywhere before the verdict when that heading is absent). */
function listedSubInstructions(before: string): string[] {
  const heading = /sub-instructions\s*:?/i.exec(before);
  const region = heading ? before.slice(heading.index + heading[0].length) : before;
  const items: string[] = [];
  for (const line of region.split('\n')) {
    const m = /^\s*(?:[-*]\s*)?\**(\d+)[.)]\**\s+(.+)$/.exec(line);
    // stop at the first numbering that does not continue the list (later discussion may number again)
    if (m && Number(m[1]) === items.length + 1) items.push(m[2].trim());
    else if (m && items.length > 0) break;
  }
  return items;
}

export function parseFollowVerdict(reply: JudgeReply): FollowVerdict {
  const refused = apiRefusal(reply);
  if (refused) return { status: 'refused', reason: refused };
  const found = lastJsonWith(reply.content, 'steps');
  if (!found) return noVerdict(reply);
  const raw = found.value.steps;
  if (!Array.isArray(raw) || raw.length === 0) return { status: 'malformed', reason: "'steps' is not a non-empty array" };
  const steps: StepVerdict[] = [];
  for (const [i, s] of raw.entries()) {
    const step = s as { step?: unknown; carried_out?: unknown; in_order?: unknown };
    if (typeof step !== 'object' || step === null || step.step !== i + 1 || typeof step.carried_out !== 'boolean' || typeof step.in_order !== 'boolean') {
      return { status: 'malformed', reason: `step ${i + 1} is not {"step": ${i + 1}, "carried_out": bool, "in_order": bool}: ${JSON.stringify(s)}` };
    }
    steps.push({ step: i + 1, carriedOut: step.carried_out, inOrder: step.in_order });
  }
  const subInstructions = listedSubInstructions(reply.content.slice(0, found.start));
  if (subInstructions.length !== steps.length) {
    return { status: 'malformed', reason: `lists ${subInstructions.length} sub-instructions but gives ${steps.length} step verdicts` };
  }
  return { status: steps.every((s) => s.carriedOut && s.inOrder) ? 'followed' : 'not-followed', subInstructions, steps };
}

export function parsePairVerdict(reply: JudgeReply): PairVerdict {
  const refused = apiRefusal(reply);
  if (refused) return { status: 'refused', reason: refused };
  const found = lastJsonWith(reply.content, 'winner');
  if (!found) return noVerdict(reply);
  const winner = found.value.winner;
  if (winner === 'A' || winner === 'B') return { status: winner };
  if (typeof winner === 'string' && winner.toLowerCase() === 'tie') return { status: 'tie' };
  return { status: 'malformed', reason: `'winner' must be "A", "B" or "tie", got ${JSON.stringify(winner)}` };
}
