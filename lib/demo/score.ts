/**
 * The one scorer of the demo's synthetic tasks, used by the demo itself and by
 * `seqtune eval --bench synthetic` (lib/demo/synthetic-bench.ts). Deterministic, no model calls.
 *
 * An answer to a sequential instruction has the labelled form the SIT data teaches
 * (multiStepThenAnswer): `1. <Label>:\n<text>\n2. <Label>:\n<text>\nResult: <answer>`. A single-step
 * answer is the bare text (or `Result: <answer>`).
 * - extracted: the text after the last `Result:`; without one, the whole output when it has no
 *   step blocks (a bare answer), else nothing. Trimmed at both ends, nothing else normalised.
 * - correct (exact match): extracted === gold, case and inner spacing included.
 * - followed: the output starts with exactly the requested steps — same count, numbered 1..n in
 *   order, each label equal to the requested one and each text equal to the exact intermediate
 *   result — followed directly by `Result:` (optional when no step is requested) and a non-empty
 *   answer. The final answer's correctness is not part of it (that is exact match).
 * - followed in any format (followedAnyFormat): each requested step's exact intermediate result
 *   appears in the output, in order, as a whole span (no letter or digit touching it on either
 *   side), with any label or none, and the output goes on after the last of them (some letter or
 *   digit besides a `Result:` marker: an attempt at the final answer). This is the fair measure
 *   for a model never shown the labelled format (IT); the strict form is SIT's own format.
 */
import type { ItemScore } from '../eval/bench';

export const RESULT_MARKER = 'Result:';

export interface ExpectedStep {
  label: string;
  text: string;
}

export interface ScoreTarget {
  steps: readonly ExpectedStep[];
  gold: string;
}

export interface ParsedStep {
  number: number;
  label: string;
  text: string;
}

export interface ParsedOutput {
  /** the step blocks at the start of the output, in order */
  steps: ParsedStep[];
  /** what follows them */
  rest: string;
  extracted: string | null;
}

const STEP_BLOCK = /^(\d+)\. ([^\n]*?):\n([^\n]*)(?:\n|$)/;

export function parseOutput(output: string): ParsedOutput {
  const steps: ParsedStep[] = [];
  let rest = output;
  for (let m = STEP_BLOCK.exec(rest); m; m = STEP_BLOCK.exec(rest)) {
    steps.push({ number: Number(m[1]), label: m[2], text: m[3] });
    rest = rest.slice(m[0].length);
  }
  const marker = output.lastIndexOf(RESULT_MARKER);
  let extracted: string | null = null;
  if (marker >= 0) extracted = output.slice(marker + RESULT_MARKER.length).trim();
  else if (steps.length === 0) extracted = output.trim();
  return { steps, rest, extracted };
}

export function scoreOutput(target: ScoreTarget, output: string): ItemScore {
  const parsed = parseOutput(output);
  const extracted = parsed.extracted;
  const stepsFollowed =
    parsed.steps.length === target.steps.length &&
    parsed.steps.every((s, i) => s.number === i + 1 && s.label === target.steps[i].label && s.text === target.steps[i].text);
  const resultPlaced = parsed.rest.startsWith(RESULT_MARKER) || (target.steps.length === 0 && !parsed.rest.includes(RESULT_MARKER));
  return {
    extracted,
    correct: extracted === target.gold,
    followed: stepsFollowed && resultPlaced && extracted !== null && extracted !== '',
  };
}

const isWordChar = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);

/** Where `text` first occurs in `output` at or after `from` as a whole span, else -1. */
function spanAt(output: string, text: string, from: number): number {
  for (let at = output.indexOf(text, from); at >= 0; at = output.indexOf(text, at + 1)) {
    if (!isWordChar(output[at - 1]) && !isWordChar(output[at + text.length])) return at;
  }
  return -1;
}

export function followedAnyFormat(steps: readonly ExpectedStep[], output: string): boolean {
  let from = 0;
  for (const step of steps) {
    // the earliest match leaves the most room for the later steps
    const at = spanAt(output, step.text, from);
    if (at < 0) return false;
    from = at + step.text.length;
  }
  return /[A-Za-z0-9]/.test(output.slice(from).split(RESULT_MARKER).join(''));
}
