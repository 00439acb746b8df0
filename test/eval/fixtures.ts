/**
 * Small hand-made eval data and fake generators shared by the eval tests.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GenerateOptions, Generator } from '../../lib/eval/generator';

export const XQUAD_GOLDS = ['Denver Broncos', 'Carolina', '308', 'Levi Stadium', 'Santa Clara', 'CBS', 'Super Bowl 50'];

/** An XQuAD "trans" file of the SIT layout whose question i reads "q<i>". */
export function writeXquad(dir: string, name = 'xquad_trans_vi.json'): string {
  const file = join(dir, name);
  const records = XQUAD_GOLDS.map((gold, i) => ({ instruction: 'First, translate the input into English.', input: `Context: c${i}\nQuestion: q${i}`, output: gold }));
  writeFileSync(file, `[\n${records.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`);
  return file;
}

/**
 * The output for question i: markers and answers chosen so the expected scores are known by hand —
 * i % 3 == 0: "Result: <gold>" (followed, correct); 1: "<gold>" (not followed, correct);
 * 2: "Answer: nobody" (followed, wrong). So 7 items: accuracy 5/7, follow 5/7, both 3/7.
 */
export function xquadOutput(i: number): string {
  return i % 3 === 0 ? `Translation: ...\nResult: ${XQUAD_GOLDS[i]}` : i % 3 === 1 ? XQUAD_GOLDS[i] : 'Answer: nobody';
}

export const questionIndex = (prompt: string) => Number(/Question: q(\d+)/.exec(prompt)![1]);

/** Answers from the prompt's question number; records every call. */
export class FakeGenerator implements Generator {
  calls: { prompts: string[]; options: GenerateOptions }[] = [];
  constructor(
    private readonly answer: (prompt: string) => string = (p) => xquadOutput(questionIndex(p)),
    private readonly failOnCall?: number,
  ) {}

  async generate(prompts: string[], options: GenerateOptions): Promise<string[]> {
    this.calls.push({ prompts, options });
    if (this.failOnCall === this.calls.length) throw new Error('simulated crash');
    return prompts.map(this.answer);
  }

  get prompts(): string[] {
    return this.calls.flatMap((c) => c.prompts);
  }
}
