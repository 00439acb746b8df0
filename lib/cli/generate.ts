import * as fs from 'node:fs/promises';
import { resolveDevice, weightsDtype } from '../device';
import { isSeqtuneError, SeqtuneError } from '../errors';
import { firstNonFinite } from '../model/non-finite';
import { generate } from '../model/generate';
import { loadModel } from '../model/load';
import { promptFormat, TemplateName } from '../model/prompt-format';
import { defaultTemplate } from '../model/trained-template';
import type { HfTokenizer } from '../model/tokenizer';
import { Command, flagOptions, numberFlag, positiveIntegerFlag, requireFlag, stringFlag } from './command';

/** Prompts from --prompt or --prompts (a text file, one per line, or JSONL with "prompt"/"instruction"[,"input"]). */
async function readPrompts(values: Record<string, unknown>): Promise<Array<{ instruction: string; input: string }>> {
  const single = values.prompt;
  if (typeof single === 'string') return [{ instruction: single, input: '' }];
  const file = values.prompts;
  if (typeof file !== 'string') throw new SeqtuneError('give --prompt TEXT or --prompts FILE', 'ERR_ARGUMENT');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new SeqtuneError(`cannot read --prompts ${file}: ${(error as Error).message}`, 'ERR_IO');
  }
  return text
    .split('\n')
    .map((line, i) => ({ line: line.trim(), i }))
    .filter(({ line }) => line !== '')
    .map(({ line, i }) => {
      if (!file.endsWith('.jsonl')) return { instruction: line, input: '' };
      try {
        const obj = JSON.parse(line) as Record<string, unknown>;
        const instruction = obj.prompt ?? obj.instruction;
        if (typeof instruction !== 'string') throw new Error('expected a "prompt" or "instruction" string');
        return { instruction, input: typeof obj.input === 'string' ? obj.input : '' };
      } catch (error) {
        throw new SeqtuneError(`${file}:${i + 1}: ${(error as Error).message}`, 'ERR_DATA');
      }
    });
}

/** generate(), with NaN scores traced to the weight that is not finite. */
async function generateOrNameBadWeight(...args: Parameters<typeof generate>): ReturnType<typeof generate> {
  try {
    return await generate(...args);
  } catch (error) {
    if (!isSeqtuneError(error, 'ERR_NON_FINITE')) throw error;
    const bad = await firstNonFinite(args[0].tensors());
    throw bad ? new SeqtuneError(`${error.message}: ${bad} holds NaN or Inf values`, 'ERR_NON_FINITE') : error;
  }
}

/**
 * The prompt texts for a template, and whether the BOS id goes before each: not when the template
 * writes the BOS text itself (a chat template), so every prompt starts with exactly one BOS.
 */
export function renderPrompts(template: TemplateName | 'raw', tokenizer: HfTokenizer, prompts: Array<{ instruction: string; input: string }>): { texts: string[]; addBos: boolean } {
  if (template === 'raw') return { texts: prompts.map((p) => (p.input ? `${p.instruction}\n${p.input}` : p.instruction)), addBos: tokenizer.bosId !== null };
  const format = promptFormat(template, tokenizer);
  return {
    texts: prompts.map((p) => format.prompt({ instruction: p.instruction, input: p.input, output: '' })),
    addBos: !format.rendersBos && tokenizer.bosId !== null,
  };
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate from a model (and adapter) for one prompt or a file of prompts, streaming a single prompt',
  usage:
    'seqtune generate --model DIR|ORG/NAME[@REV] [--adapter DIR] --prompt TEXT|--prompts FILE [--template alpaca|tulu|chat|raw (default: the one the adapter or model was trained with, else tulu)] ' +
    '[--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--stop S] [--seed N] [--device auto|cpu|cuda:N] [--weights-dtype auto|f32|bf16]',
  conflicts: [['prompt', 'prompts']],
  options: {
    ...flagOptions(
      [
        'model', 'adapter', 'prompt', 'prompts', 'template', 'max-new-tokens', 'temperature', 'top-k', 'top-p',
        'repetition-penalty', 'seed', 'device', 'weights-dtype',
      ],
    ),
    stop: { type: 'string', multiple: true },
  },
  async run(values) {
    const explicit = stringFlag(values, 'template');
    if (explicit !== undefined && !['alpaca', 'tulu', 'chat', 'raw'].includes(explicit)) throw new SeqtuneError(`--template must be alpaca, tulu, chat or raw, got '${explicit}'`, 'ERR_ARGUMENT');
    const maxNewTokens = positiveIntegerFlag(values, 'max-new-tokens', 256)!;
    const prompts = await readPrompts(values);
    const modelDir = requireFlag(values, 'model', generateCommand);
    const adapterDir = stringFlag(values, 'adapter');
    const template = (explicit as TemplateName | 'raw' | undefined) ?? (await defaultTemplate(modelDir, adapterDir, 'tulu')).template;
    const { device, fallbackReason } = resolveDevice(stringFlag(values, 'device') ?? 'auto');
    if (fallbackReason) process.stderr.write(`device: cpu (${fallbackReason})\n`);
    const dtype = weightsDtype(stringFlag(values, 'weights-dtype'), device);
    const { model, tokenizer, config } = await loadModel(modelDir, { device, dtype, adapterDir, maxSeqLen: 'per-generation' });
    process.stderr.write(`weights: ${dtype} on ${device}\n`);
    const { texts, addBos } = renderPrompts(template, tokenizer, prompts);
    const longest = Math.max(...texts.map((text) => tokenizer.encode(text).length));
    if (longest + maxNewTokens > config.maxPositionEmbeddings) {
      process.stderr.write(
        `warning: a prompt of ${longest} tokens plus --max-new-tokens ${maxNewTokens} goes past the model's max_position_embeddings (${config.maxPositionEmbeddings}); text beyond it is of poor quality\n`,
      );
    }
    const streaming = texts.length === 1;
    let printed = 0;
    const results = await generateOrNameBadWeight(model, tokenizer, texts, {
      maxNewTokens,
      temperature: numberFlag(values, 'temperature', 0),
      topK: numberFlag(values, 'top-k'),
      topP: numberFlag(values, 'top-p'),
      repetitionPenalty: numberFlag(values, 'repetition-penalty'),
      stop: values.stop as string[] | undefined,
      seed: numberFlag(values, 'seed', 0),
      addBos,
      onToken: streaming
        ? (_b, _t, text) => {
            process.stdout.write(text.slice(printed));
            printed = text.length;
          }
        : undefined,
    });
    if (streaming) {
      process.stdout.write(`${results[0].text.slice(printed)}\n`);
    } else {
      for (const r of results) console.log(JSON.stringify({ output: r.text, finishReason: r.finishReason }));
    }
    return 0;
  },
};
