/**
 * The chat templates an eval prompt can be rendered with. Kept behind `renderPrompt` so it can be
 * switched to the shared lib/data/templates module once that exists; only the eval-side forms
 * are here. Default `tulu` has no system block: the authors' eval rendered none (sit-paper.md §5),
 * although training emitted an empty one (§9 item 8) — `tulu-system` reproduces that on purpose.
 */
import { SeqtuneError } from '../errors';

export type EvalTemplate = 'tulu' | 'tulu-system' | 'alpaca' | 'raw';

export const EVAL_TEMPLATES: readonly EvalTemplate[] = ['tulu', 'tulu-system', 'alpaca', 'raw'];

/** A prompt before templating: the user turn, and text the assistant turn starts with (MGSM's " Answer:"). */
export interface PromptParts {
  user: string;
  assistantPrefix?: string;
}

// The Alpaca no-input form (sit-paper.md §4.1): eval prompts are one user text, so there is no input block.
const ALPACA_HEADER = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n';

export function renderPrompt(parts: PromptParts, template: EvalTemplate): string {
  const prefix = parts.assistantPrefix ?? '';
  switch (template) {
    case 'tulu':
      return `<|user|>\n${parts.user}\n<|assistant|>\n${prefix}`;
    case 'tulu-system':
      return `<|system|>\n\n<|user|>\n${parts.user}\n<|assistant|>\n${prefix}`;
    case 'alpaca':
      return `${ALPACA_HEADER}${parts.user}\n\n### Response:\n${prefix}`;
    case 'raw':
      return `${parts.user}${prefix}`;
  }
}

export function parseTemplate(name: string): EvalTemplate {
  if ((EVAL_TEMPLATES as readonly string[]).includes(name)) return name as EvalTemplate;
  throw new SeqtuneError(`unknown template '${name}' (one of: ${EVAL_TEMPLATES.join(', ')})`, 'ERR_ARGUMENT');
}
