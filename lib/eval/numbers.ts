/**
 * Number extraction for the math benches (MGSM, GSM8K): the answer is the LAST number in the
 * output (docs/method.md §5). Rules, each pinned by a test:
 * - thousands commas between digits are dropped ("1,234,567" is 1234567);
 * - a decimal point needs digits after it, so a sentence's final period is not part of the number
 *   ("is 18." is 18; "3.5" is 3.5; ".5" is 0.5);
 * - a leading sign (-, + or the minus sign U+2212) counts only where it cannot be an operator:
 *   not right after a letter, digit, ')' , ']' or '.' ("10-5" ends in 5, "is -3" is -3).
 * The authors' regex drops the sign of negative integers and their exact-match strips
 * punctuation ("3.5" matched "35"); comparing parsed values fixes both.
 */

const THOUSANDS_COMMA = /(?<=\d),(?=\d)/g;
const NUMBER = /(?:(?<![\p{L}\p{N}_)\].])[-+\u2212])?(?:\d+(?:\.\d+)?|\.\d+)/gu;

export interface ExtractedNumber {
  /** the number as written, commas removed and the minus sign normalised */
  text: string;
  value: number;
}

function toNumber(text: string): ExtractedNumber {
  const normal = text.replace('\u2212', '-');
  return { text: normal, value: Number(normal) };
}

export function extractLastNumber(output: string): ExtractedNumber | null {
  const matches = output.replace(THOUSANDS_COMMA, '').match(NUMBER);
  return matches ? toNumber(matches[matches.length - 1]) : null;
}

/** A gold answer such as "1,600" or "-10": the whole text must be one number. */
export function parseGoldNumber(text: string): number | null {
  const cleaned = text.trim().replace(THOUSANDS_COMMA, '');
  const matches = cleaned.match(NUMBER);
  return matches && matches.length === 1 && matches[0] === cleaned ? toNumber(cleaned).value : null;
}

/** Equal as numbers, so "18.0" matches 18; the tolerance only absorbs float rounding. */
export function numbersMatch(predicted: number, gold: number): boolean {
  return Math.abs(predicted - gold) <= 1e-9 * Math.max(1, Math.abs(gold));
}
