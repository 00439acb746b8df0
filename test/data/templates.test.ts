import t from 'tap';
import { alpacaFormat, alpacaPrompt, chatTemplateFormat, ChatTemplateRender, formatByName, toMessages, tuluFormat } from '../../lib/data/templates';
import { isSeqtuneError } from '../../lib/errors';

const withInput = { instruction: 'Add the numbers.', input: '2 and 3', output: '5' };
const noInput = { instruction: 'Say hi.', input: '', output: 'Hi!', system_prompt: '' };

t.test('Alpaca prompts are the docs/method.md §4.1 templates, character for character', async (t) => {
  t.equal(
    alpacaFormat().prompt(withInput),
    'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n' +
      '### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n',
  );
  t.equal(
    alpacaPrompt('Say hi.'),
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n',
  );
  t.same(alpacaFormat().segments(noInput), [
    { text: alpacaPrompt('Say hi.'), train: false },
    { text: 'Hi!', train: true },
  ]);
  t.equal(alpacaFormat().prompt({ ...noInput, system_prompt: ' Be brief. ' }), 'Be brief.\n\n' + alpacaPrompt('Say hi.'), 'a system prompt goes before the preamble');
  t.equal(alpacaFormat().prompt({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }), alpacaPrompt('q'));
  t.throws(
    () => alpacaFormat().segments({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }, { role: 'user', content: 'q2' }, { role: 'assistant', content: 'b' }] }),
    /one user turn/,
  );
});

t.test('Tulu: training text and eval prompt, with the system-block options', async (t) => {
  const join = (f = tuluFormat()) => f.segments(withInput).map((s) => (s.train ? `[${s.text}]` : s.text)).join('');
  t.equal(join(), '<|user|>\nAdd the numbers. 2 and 3\n<|assistant|>\n[5]');
  t.equal(join(tuluFormat({ systemBlock: 'always' })), '<|system|>\n\n<|user|>\nAdd the numbers. 2 and 3\n<|assistant|>\n[5]', 'the paper training format: empty system block');
  t.equal(tuluFormat().prompt(withInput), '<|user|>\nAdd the numbers. 2 and 3\n<|assistant|>\n', 'the paper eval format');
  const sys = { ...withInput, system_prompt: '  You are helpful. ' };
  t.equal(tuluFormat().prompt(sys), '<|system|>\nYou are helpful.\n<|user|>\nAdd the numbers. 2 and 3\n<|assistant|>\n');
  t.equal(tuluFormat({ systemBlock: 'never' }).prompt(sys), '<|user|>\nAdd the numbers. 2 and 3\n<|assistant|>\n');
  t.equal(tuluFormat({ systemBlock: 'always' }).prompt(noInput), '<|system|>\n\n<|user|>\nSay hi.\n<|assistant|>\n');
  const multi = {
    messages: [
      { role: 'user' as const, content: ' q1 ' },
      { role: 'assistant' as const, content: 'a1' },
      { role: 'user' as const, content: 'q2' },
      { role: 'assistant' as const, content: 'a2' },
    ],
  };
  t.same(tuluFormat().segments(multi), [
    { text: '<|user|>\nq1\n<|assistant|>\n', train: false },
    { text: 'a1', train: true },
    { text: '\n<|user|>\nq2\n<|assistant|>\n', train: false },
    { text: 'a2', train: true },
  ]);
  t.equal(tuluFormat().prompt(multi), '<|user|>\nq1\n<|assistant|>\na1\n<|user|>\nq2\n<|assistant|>\n');
  t.same(tuluFormat().segments({ messages: [{ role: 'user', content: 'only' }] }), [{ text: '<|user|>\nonly\n', train: false }]);
});

/** A Llama-2-chat-like template, written here as the injected renderer. */
const llama2: ChatTemplateRender = (messages) => {
  let out = '<s>';
  let system = '';
  for (const m of messages) {
    if (m.role === 'system') system = `<<SYS>>\n${m.content}\n<</SYS>>\n\n`;
    else if (m.role === 'user') {
      out += `[INST] ${system}${m.content} [/INST]`;
      system = '';
    } else out += ` ${m.content} </s>`;
  }
  // Llama 2's template has no assistant opener: the generation prompt adds nothing
  return out;
};

t.test('a chat template: responses found by rendering prefixes', async (t) => {
  const f = chatTemplateFormat(llama2, { name: 'llama2', rendersBos: true, endOfTurn: '</s>' });
  const record = { instruction: 'Add.', input: '1 2', output: '3', system_prompt: 'S' };
  t.same(toMessages(record, { inputSeparator: '\n\n' }).map((m) => m.content), ['S', 'Add.\n\n1 2', '3']);
  t.same(f.segments(record), [
    { text: '<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nAdd.\n\n1 2 [/INST]', train: false },
    { text: ' 3 </s>', train: true },
  ]);
  t.equal(f.prompt(record), '<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nAdd.\n\n1 2 [/INST]');
  t.ok(f.rendersBos && f.rendersEos);
  // a conversation ending in a user turn keeps that turn as trailing prompt text
  const open = { messages: [{ role: 'user' as const, content: 'a' }, { role: 'assistant' as const, content: 'b' }, { role: 'user' as const, content: 'c' }] };
  t.same(f.segments(open), [
    { text: '<s>[INST] a [/INST]', train: false },
    { text: ' b </s>', train: true },
    { text: '[INST] c [/INST]', train: false },
  ]);
});

t.test('a template whose renderings are not prefixes of each other is rejected', async (t) => {
  const unstable: ChatTemplateRender = (messages, { addGenerationPrompt }) => `${messages.length}:` + messages.map((m) => m.content).join('|') + (addGenerationPrompt ? '>' : '');
  try {
    chatTemplateFormat(unstable).segments(withInput);
    t.fail('should throw');
  } catch (error) {
    t.ok(isSeqtuneError(error, 'ERR_CONFIG'));
    t.match((error as Error).message, /not prefix-stable at message 1/);
  }
  const badEnd: ChatTemplateRender = (messages, o) => (o.addGenerationPrompt ? llama2(messages, o) : messages.length === 2 ? llama2(messages, o) : 'x');
  t.throws(() => chatTemplateFormat(badEnd).segments({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }] }), /at the end/);
});

t.test('formats by name', async (t) => {
  t.equal(formatByName('alpaca').name, 'alpaca');
  t.equal(formatByName('tulu', { systemBlock: 'always' }).prompt(noInput).startsWith('<|system|>'), true);
  t.throws(() => formatByName('vicuna'), /unknown prompt format/);
});
