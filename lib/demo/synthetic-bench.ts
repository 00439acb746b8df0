/**
 * The `synthetic` bench of `seqtune eval` (lib/eval/benches/index.ts loads this module on first use
 * and registers `syntheticBench`): the demo's eval split files, scored by lib/demo/score.ts.
 *
 * A data file is JSONL (or a JSON array) of the items `seqtune demo` writes to
 * <out>/<split>/items.jsonl: {id, split, instruction, input, steps: [{label, text}], gold}. The user
 * turn is `{instruction} {input}`, as the tulu training format joins an Alpaca record.
 */
import type { BenchDefinition, EvalItem } from '../eval/bench';
import { asObject, dataError, readJsonRecords, stringField } from '../eval/files';
import type { DemoItem } from './data';
import { ExpectedStep, scoreOutput } from './score';

export interface SyntheticItem extends EvalItem {
  gold: string;
  instruction: string;
  input: string;
  steps: ExpectedStep[];
}

/** The user turn of an item: exactly what the training format puts before the response. */
export function userTurn(item: Pick<DemoItem, 'instruction' | 'input'>): string {
  return `${item.instruction} ${item.input}`;
}

async function read(dataPath: string): Promise<SyntheticItem[]> {
  return (await readJsonRecords(dataPath)).map(({ value, line }) => {
    const obj = asObject(value, dataPath, line);
    const rawSteps = obj.steps;
    if (!Array.isArray(rawSteps)) throw dataError(dataPath, line, "'steps' must be an array of {label, text}");
    const steps = rawSteps.map((s) => {
      const step = asObject(s, dataPath, line);
      return { label: stringField(step, 'label', dataPath, line), text: stringField(step, 'text', dataPath, line) };
    });
    return {
      id: stringField(obj, 'id', dataPath, line),
      file: dataPath,
      line,
      group: stringField(obj, 'split', dataPath, line),
      gold: stringField(obj, 'gold', dataPath, line),
      instruction: stringField(obj, 'instruction', dataPath, line),
      input: stringField(obj, 'input', dataPath, line),
      steps,
    };
  });
}

export const syntheticBench: BenchDefinition<SyntheticItem> = {
  description: "seqtune demo's synthetic sequential tasks: exact match of the final answer, and following (every requested step, in order, each intermediate exact)",
  read,
  prompt: (item) => ({ user: userTurn(item) }),
  score: (item, output) => scoreOutput(item, output),
  // the longest demo answer (three labelled steps over eight words) stays well below this
  maxNewTokens: 256,
};
