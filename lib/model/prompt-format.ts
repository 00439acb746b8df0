/**
 * The prompt format a command was asked for, by name: alpaca and tulu come from lib/data/templates;
 * `chat` is the model's own chat template from its tokenizer_config.json.
 */
import { chatTemplateFormat, formatByName, PromptFormat, TuluOptions } from '../data/templates';
import { HfTokenizer } from './tokenizer';

export type TemplateName = 'alpaca' | 'tulu' | 'chat';

export function promptFormat(name: TemplateName, tokenizer: HfTokenizer, options: TuluOptions = {}): PromptFormat {
  if (name !== 'chat') return formatByName(name, options);
  return chatTemplateFormat((messages, o) => tokenizer.applyChatTemplate(messages, { addGenerationPrompt: o.addGenerationPrompt }), {
    name: 'chat',
    // Llama-style templates write the BOS text themselves; then we must not add the id again.
    rendersBos: tokenizer.specialTokens.bos_token !== undefined && tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }]).startsWith(tokenizer.specialTokens.bos_token),
  });
}
