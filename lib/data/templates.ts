/**
 * Prompt formats: the one place the model, trainer and evaluation get their prompt text from.
 *
 * A format turns a record into segments, alternating prompt text (no loss) and response text (one
 * per assistant turn, loss unless training on inputs), and renders the generation prompt for eval.
 * - `alpacaFormat`: the Alpaca template (with and without input), as in the v1 code (docs/method.md §4.1).
 * - `tuluFormat`: open-instruct's `<|system|>/<|user|>/<|assistant|>` format used by v3 (docs/method.md §4.2).
 * - `chatTemplateFormat(render)`: a model's own chat template, rendered by a function the caller
 *   injects (the model code implements Hugging Face Jinja templates); response spans are found by
 *   rendering growing prefixes of the conversation.
 *
 * System block (docs/method.md §9 item 8): the paper trains with an always-present, possibly empty
 * `<|system|>\n\n` block but evaluates with none. Here both default to `systemBlock: 'nonempty'`
 * (a block only when there is a system text), so training and eval agree; reproduce the paper with
 * `systemBlock: 'always'` for training and `'never'` for eval.
 */
import { SeqtuneError } from '../errors';
import { asAlpaca, ChatMessage, DataRecord, isConversation } from './records';

export interface Segment {
  text: string;
  /** true for response text (an assistant turn): the tokens the loss is on by default */
  train: boolean;
}

export interface PromptFormat {
  readonly name: string;
  /** the rendered text already begins with the BOS text, so the tokenizer must not add a BOS id */
  readonly rendersBos: boolean;
  /** each rendered response already ends with the end-of-turn text, so no EOS id is appended */
  readonly rendersEos: boolean;
  /**
   * Tokenize the rendered text as one string (between appended EOS ids), as transformers'
   * apply_chat_template does, rather than segment by segment: a chat template's ids then match
   * transformers' exactly, while segments only decide which tokens are targets.
   */
  readonly tokenizeWhole?: boolean;
  /** The training text as segments; the response segments hold each assistant turn's text. */
  segments(record: DataRecord): Segment[];
  /**
   * The generation prompt: everything before the final assistant turn (or all, if none). For
   * multi-turn history, tokenize with `encodePrompt` (tokenize.ts) instead, which puts the EOS ids
   * after earlier responses exactly as training does.
   */
  prompt(record: DataRecord): string;
}

export type SystemBlock = 'nonempty' | 'always' | 'never';

const ALPACA_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n';
const ALPACA_NO_INPUT = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n';

/** The Alpaca prompt of one instruction (and input, when non-empty), ending in `### Response:\n`. */
export function alpacaPrompt(instruction: string, input = ''): string {
  return input !== ''
    ? `${ALPACA_WITH_INPUT}${instruction}\n\n### Input:\n${input}\n\n### Response:\n`
    : `${ALPACA_NO_INPUT}${instruction}\n\n### Response:\n`;
}

function singleTurn(record: DataRecord, format: string) {
  const alpaca = asAlpaca(record);
  if (!alpaca) throw new SeqtuneError(`the ${format} format holds one user turn and one response; this conversation has more`, 'ERR_DATA');
  return alpaca;
}

/**
 * The Alpaca format. It has no system slot: a non-empty system prompt is put before the preamble,
 * followed by a blank line, rather than lost.
 */
export function alpacaFormat(): PromptFormat {
  const prompt = (record: DataRecord) => {
    const r = singleTurn(record, 'alpaca');
    const system = r.system_prompt?.trim() ? `${r.system_prompt.trim()}\n\n` : '';
    return system + alpacaPrompt(r.instruction, r.input);
  };
  return {
    name: 'alpaca',
    rendersBos: false,
    rendersEos: false,
    prompt,
    segments: (record) => [
      { text: prompt(record), train: false },
      { text: singleTurn(record, 'alpaca').output, train: true },
    ],
  };
}

export interface MessageOptions {
  /** between instruction and a non-empty input when they form one user message (default ' ') */
  inputSeparator?: string;
}

/** A record as chat messages (an Alpaca record: optional system, user, assistant). */
export function toMessages(record: DataRecord, options: MessageOptions = {}): ChatMessage[] {
  if (isConversation(record)) return record.messages;
  const sep = options.inputSeparator ?? ' ';
  const user = record.input !== '' ? `${record.instruction}${sep}${record.input}` : record.instruction;
  const messages: ChatMessage[] = [];
  if (record.system_prompt !== undefined) messages.push({ role: 'system', content: record.system_prompt });
  messages.push({ role: 'user', content: user }, { role: 'assistant', content: record.output });
  return messages;
}

/** Messages without a final assistant turn: the part a prompt is rendered from. */
function promptMessages(messages: ChatMessage[]): ChatMessage[] {
  return messages.length > 0 && messages[messages.length - 1].role === 'assistant' ? messages.slice(0, -1) : messages;
}

export interface TuluOptions {
  systemBlock?: SystemBlock;
}

/**
 * open-instruct's Tulu format: `<|system|>\n{s}\n<|user|>\n{u}\n<|assistant|>\n{a}</s>` with every
 * content stripped; an Alpaca record's user turn is `{instruction} {input}`. The newline open-instruct
 * writes after each EOS starts the next prompt segment here, so it carries no loss.
 */
export function tuluFormat(options: TuluOptions = {}): PromptFormat {
  const systemBlock = options.systemBlock ?? 'nonempty';
  const render = (messages: ChatMessage[]): Segment[] => {
    const segments: Segment[] = [];
    let pending = '';
    const hasSystem = messages[0]?.role === 'system';
    if (systemBlock === 'always' && !hasSystem) pending += '<|system|>\n\n';
    for (const m of messages) {
      const content = m.content.trim();
      if (m.role === 'system') {
        if (systemBlock === 'always' || (systemBlock === 'nonempty' && content !== '')) pending += `<|system|>\n${content}\n`;
      } else if (m.role === 'user') {
        pending += `<|user|>\n${content}\n`;
      } else {
        segments.push({ text: `${pending}<|assistant|>\n`, train: false }, { text: content, train: true });
        pending = '\n';
      }
    }
    if (pending !== '\n' && pending !== '') segments.push({ text: pending, train: false });
    return segments;
  };
  return {
    name: 'tulu',
    rendersBos: false,
    rendersEos: false,
    segments: (record) => render(toMessages(record)),
    prompt(record) {
      const segments = render(promptMessages(toMessages(record)));
      return `${segments.map((s) => s.text).join('')}<|assistant|>\n`;
    },
  };
}

/**
 * A model's chat template as a function, e.g. a compiled Hugging Face Jinja template:
 * renders the messages, adding the assistant opener when `addGenerationPrompt` is set.
 */
export type ChatTemplateRender = (messages: ChatMessage[], options: { addGenerationPrompt: boolean }) => string;

export interface ChatTemplateOptions {
  name?: string;
  /** the template writes the BOS text itself (most Llama templates do) */
  rendersBos?: boolean;
  /**
   * The text the template itself ends each assistant turn with (e.g. the EOS text `</s>`). Then no
   * EOS id is appended, and a response's span ends with that text: what the template writes after
   * it (a newline, the next turn's header) is prompt text, not a target.
   */
  endOfTurn?: string;
  /** joins an Alpaca record's instruction and input into the user turn (default '\n\n') */
  inputSeparator?: string;
}

/**
 * A format over an injected chat template. The response of assistant turn k is the text that
 * rendering messages[0..k] adds to rendering messages[0..k) with the generation prompt; a template
 * whose renderings are not prefixes of one another cannot be split this way and is an ERR_CONFIG.
 */
export function chatTemplateFormat(render: ChatTemplateRender, options: ChatTemplateOptions = {}): PromptFormat {
  const name = options.name ?? 'chat-template';
  const messagesOf = (record: DataRecord) => toMessages(record, { inputSeparator: options.inputSeparator ?? '\n\n' });
  return {
    name,
    rendersBos: options.rendersBos ?? false,
    rendersEos: options.endOfTurn !== undefined,
    tokenizeWhole: true,
    prompt: (record) => render(promptMessages(messagesOf(record)), { addGenerationPrompt: true }),
    segments(record) {
      const messages = messagesOf(record);
      const segments: Segment[] = [];
      let done = '';
      messages.forEach((m, k) => {
        if (m.role !== 'assistant') return;
        const before = render(messages.slice(0, k), { addGenerationPrompt: true });
        const after = render(messages.slice(0, k + 1), { addGenerationPrompt: false });
        if (!before.startsWith(done) || !after.startsWith(before)) {
          throw new SeqtuneError(`chat template '${name}' is not prefix-stable at message ${k}, so response spans cannot be found`, 'ERR_CONFIG');
        }
        let response = after.slice(before.length);
        if (options.endOfTurn !== undefined) {
          const end = response.lastIndexOf(options.endOfTurn);
          if (end < 0) throw new SeqtuneError(`chat template '${name}' does not end assistant turn ${k} with its end-of-turn text ${JSON.stringify(options.endOfTurn)}`, 'ERR_CONFIG');
          response = response.slice(0, end + options.endOfTurn.length);
        }
        segments.push({ text: before.slice(done.length), train: false }, { text: response, train: true });
        done = before + response;
      });
      const full = render(messages, { addGenerationPrompt: false });
      if (!full.startsWith(done)) throw new SeqtuneError(`chat template '${name}' is not prefix-stable at the end`, 'ERR_CONFIG');
      if (full.length > done.length) segments.push({ text: full.slice(done.length), train: false });
      return segments;
    },
  };
}

/** The built-in formats by name (the CLI and configs name them). */
export function formatByName(name: string, options: TuluOptions = {}): PromptFormat {
  if (name === 'alpaca') return alpacaFormat();
  if (name === 'tulu') return tuluFormat(options);
  throw new SeqtuneError(`unknown prompt format '${name}' (alpaca, tulu; a chat template is passed as a function)`, 'ERR_ARGUMENT');
}
