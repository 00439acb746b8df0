/**
 * The prompt format a command was asked for, by name: alpaca and tulu come from lib/data/templates;
 * `chat` is the model's own chat template from its tokenizer_config.json.
 */
import { chatTemplateFormat, formatByName, PromptFormat, TuluOptions } from '../data/templates';
import { HfTokenizer } from './tokenizer';

export type TemplateName = 'alpaca' | 'tulu' | 'chat';

export const TEMPLATE_NAMES: readonly TemplateName[] = ['alpaca', 'tulu', 'chat'];

export function promptFormat(name: TemplateName, tokenizer: HfTokenizer, options: TuluOptions = {}): PromptFormat {
  if (name !== 'chat') return formatByName(name, options);
  const render = (messages: Parameters<HfTokenizer['applyChatTemplate']>[0], addGenerationPrompt: boolean) => tokenizer.applyChatTemplate(messages, { addGenerationPrompt });
  const { bos_token: bos, eos_token: eos } = tokenizer.specialTokens;
  // Probe one exchange: Llama-style templates write the BOS text themselves (then the id must not be
  // added again), and most end an assistant turn with the EOS text (then no EOS id is appended).
  const content = 'seqtune-probe';
  const exchange = render([{ role: 'user', content: 'x' }, { role: 'assistant', content }], false);
  const afterContent = exchange.slice(exchange.lastIndexOf(content) + content.length);
  return chatTemplateFormat((messages, o) => render(messages, o.addGenerationPrompt), {
    name: 'chat',
    rendersBos: bos !== undefined && bos !== '' && exchange.startsWith(bos),
    endOfTurn: eos !== undefined && eos !== '' && afterContent.includes(eos) ? eos : undefined,
  });
}
