import { SeqtuneError } from '../errors';
import { initModel, InitModelResult } from '../model/init-model';
import { isPresetName, PRESET_NAMES, PresetArch } from '../model/presets';
import { SimpleTokenizerKind } from '../model/io/simple-tokenizer';
import { ProgressLine } from './progress';
import { Command, flagOptions, numberFlag, requireFlag, stringFlag, Values } from './command';

function oneOf<T extends string>(values: Values, name: string, allowed: readonly T[], fallback: T): T {
  const v = stringFlag(values, name) ?? fallback;
  if (!(allowed as readonly string[]).includes(v)) throw new SeqtuneError(`--${name} must be one of ${allowed.join(', ')}, got '${v}'`, 'ERR_ARGUMENT');
  return v as T;
}

function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** The summary `seqtune init-model` prints. */
export function formatInitReport(result: InitModelResult): string {
  const c = result.config;
  const bytesPer = c.torchDtype === 'bfloat16' ? 2 : 4;
  return [
    `wrote ${result.dir}: ${c.architecture}, ${(result.parameters / 1e6).toFixed(2)}M parameters (${formatBytes(result.parameters * bytesPer)} as ${c.torchDtype}), seed ${result.seed}`,
    `  ${c.numLayers} layers, hidden ${c.hiddenSize}, MLP ${c.intermediateSize}, heads ${c.numHeads}/${c.numKvHeads} kv, vocab ${c.vocabSize}`,
    `  files: ${result.files.join(', ')}`,
  ].join('\n');
}

export const initModelCommand: Command = {
  name: 'init-model',
  summary: 'write a randomly initialised model (tiny/small/1b/8b) with its own tokenizer, in Hugging Face layout',
  usage: `seqtune init-model --preset ${PRESET_NAMES.join('|')} --out DIR [--arch llama|qwen2] [--tokenizer byte|char] [--alphabet CHARS] [--seed N] [--dtype f32|bf16] [--quiet]`,
  options: flagOptions(['preset', 'out', 'arch', 'tokenizer', 'alphabet', 'seed', 'dtype'], ['quiet']),
  async run(values) {
    const preset = requireFlag(values, 'preset', this);
    if (!isPresetName(preset)) throw new SeqtuneError(`--preset must be one of ${PRESET_NAMES.join(', ')}, got '${preset}'`, 'ERR_ARGUMENT');
    const seed = numberFlag(values, 'seed', 0) as number;
    if (!Number.isSafeInteger(seed) || seed < 0) throw new SeqtuneError(`--seed must be a non-negative integer, got ${seed}`, 'ERR_ARGUMENT');
    // a bar on a terminal, a line per tenth in logs; --quiet: the summary only
    const progress = values.quiet === true ? null : new ProgressLine();
    const result = await initModel({
      preset,
      out: requireFlag(values, 'out', this),
      arch: oneOf<PresetArch>(values, 'arch', ['llama', 'qwen2'], 'llama'),
      tokenizer: oneOf<SimpleTokenizerKind>(values, 'tokenizer', ['byte', 'char'], 'byte'),
      alphabet: stringFlag(values, 'alphabet'),
      seed,
      dtype: oneOf(values, 'dtype', ['f32', 'bf16'] as const, 'f32'),
      onTensor: progress ? (name, i, total) => progress.update(i + 1, total, `[${i + 1}/${total}] ${name}`) : undefined,
    });
    progress?.end();
    console.log(formatInitReport(result));
    return 0;
  },
};
