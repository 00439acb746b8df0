/**
 * SeqEval (docs/method.md §3): 805 sequential instructions, `seqEval.json` = JSON array of
 * {instruction, iteration}, where `iteration` (1–4) is the number of rewriting rounds, i.e. the
 * chain depth metrics are grouped by ("depth-1" … "depth-4"). Generation is greedy with 2048 new
 * tokens and the instruction alone as the user turn. There is no gold: whether the steps were
 * followed is decided by the LLM judge (judge/seqeval-judge.ts), so the item score is empty here.
 * The released file has one empty instruction (index 547, depth 3); it is kept, not rejected, so
 * ids and per-depth counts stay those of the benchmark, and whatever the judge makes of it is counted.
 */
import { BenchDefinition, EvalItem } from '../bench';
import { asObject, dataError, numberField, readJsonRecords, stringField } from '../files';

export interface SeqEvalItem extends EvalItem {
  gold: null;
  instruction: string;
  depth: number;
}

export const depthGroup = (depth: number) => `depth-${depth}`;

async function read(dataPath: string): Promise<SeqEvalItem[]> {
  return (await readJsonRecords(dataPath)).map(({ value, line, index, at }) => {
    const obj = asObject(value, at);
    const instruction = stringField(obj, 'instruction', at);
    const depth = numberField(obj, 'iteration', at);
    if (!Number.isInteger(depth) || depth < 1) throw dataError(at, `'iteration' must be a positive integer, got ${depth}`);
    return { id: String(index), file: dataPath, line, group: depthGroup(depth), gold: null, instruction, depth };
  });
}

export const seqEvalBench: BenchDefinition<SeqEvalItem> = {
  description: 'SeqEval: generation for the sequential instructions; following rate and win rate from an LLM judge',
  read,
  prompt: (item) => ({ user: item.instruction }),
  score: () => ({ extracted: null, correct: null, followed: null }),
  maxNewTokens: 2048,
};
