/**
 * The templates an eval prompt is rendered with, over the shared prompt formats of
 * lib/data/templates.ts (the user turn is an Alpaca record's instruction with an empty input).
 * Default `tulu` has no system block: the authors' eval rendered none (docs/method.md §5), although
 * their training emitted an empty one (docs/method.md §9 item 8) — `tulu-system` reproduces that on purpose.
 * `raw` is the bare text, for base models without a chat format.
 */
import { SeqtuneError } from '../errors';
import { alpacaFormat, tuluFormat } from '../data/templates';

export type EvalTemplate = 'tulu' | 'tulu-system' | 'alpaca' | 'raw';

export const EVAL_TEMPLATES: readonly EvalTemplate[] = ['tulu', 'tulu-system', 'alpaca', 'raw'];

/** A prompt before templating: the user turn, and text the assistant turn starts with (MGSM's " Answer:"). */
export interface PromptParts {
  user: string;
  assistantPrefix?: string;
}

const FORMATS = {
  tulu: tuluFormat({ systemBlock: 'never' }),
  'tulu-system': tuluFormat({ systemBlock: 'always' }),
  alpaca: alpacaFormat(),
};

export function renderPrompt(parts: PromptParts, template: EvalTemplate): string {
  const prefix = parts.assistantPrefix ?? '';
  if (template === 'raw') return `${parts.user}${prefix}`;
  return FORMATS[template].prompt({ instruction: parts.user, input: '', output: '' }) + prefix;
}

export function parseTemplate(name: string): EvalTemplate {
  if ((EVAL_TEMPLATES as readonly string[]).includes(name)) return name as EvalTemplate;
  throw new SeqtuneError(`unknown template '${name}' (one of: ${EVAL_TEMPLATES.join(', ')})`, 'ERR_ARGUMENT');
}
