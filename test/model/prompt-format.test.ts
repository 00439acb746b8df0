/**
 * `--template chat`: the model's own chat template in training and generation. The rules: exactly
 * one BOS at the start (the template's text, never an extra id); no EOS id appended after the
 * template's own end of turn; a response's target span ends at that end-of-turn token; the ids are
 * those of the whole rendered text, and, where the fixture exists, transformers' apply_chat_template.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { renderPrompts } from '../../lib/cli/generate';
import { ConversationRecord } from '../../lib/data/records';
import { encodePrompt, encodeRecord } from '../../lib/data/tokenize';
import { simpleTokenizerFiles, writeTokenizerFiles } from '../../lib/model/io/simple-tokenizer';
import { promptFormat } from '../../lib/model/prompt-format';
import { HfTokenizer } from '../../lib/model/tokenizer';
import { hostRng, testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);
const shared = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'tokenizers', 'llama2');
const noShared = fs.existsSync(path.join(shared, 'tokenizer.json')) ? false : `the Llama-2 tokenizer is not at ${shared}`;
const fixtureFile = path.join(__dirname, '..', 'fixtures', 'chat-template', 'llama2-apply-chat-template.json');

function words(n: number): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  return Array.from({ length: 1 + rng.int(n) }, () => Array.from({ length: 1 + rng.int(7) }, () => letters[rng.int(26)]).join('')).join(' ');
}

function conversation(turns: number): ConversationRecord {
  const messages: ConversationRecord['messages'] = [];
  if (rng.int(2)) messages.push({ role: 'system', content: words(4) });
  for (let i = 0; i < turns; i++) messages.push({ role: 'user', content: words(6) }, { role: 'assistant', content: words(6) });
  return { messages };
}

const count = (ids: number[], id: number) => ids.filter((x) => x === id).length;

/** The rules on one tokenizer; `bosPerTurn`: the template writes a BOS before every user turn (Llama 2). */
function checkRules(t: Test, tok: HfTokenizer, bosPerTurn: boolean) {
  const format = promptFormat('chat', tok);
  t.ok(format.rendersBos, 'the template writes the BOS text');
  t.ok(format.rendersEos, 'the template ends assistant turns with the EOS text');
  for (let c = 0; c < 6; c++) {
    const turns = 1 + rng.int(3);
    const record = conversation(turns);
    const { ids, target } = encodeRecord(record, { tokenizer: tok, format }).example!;
    const text = tok.applyChatTemplate(record.messages);
    t.same(ids, tok.encode(text), `case ${c}: the ids of the whole rendered text`);
    t.equal(ids[0], tok.bosId, 'starts with BOS');
    t.not(ids[1], tok.bosId, 'exactly one BOS at the start');
    t.equal(count(ids, tok.bosId!), bosPerTurn ? turns : 1, 'no BOS id beyond the template\'s own');
    for (let i = 0; i + 1 < ids.length; i++) if (ids[i] === tok.eosId && ids[i + 1] === tok.eosId) t.fail(`case ${c}: EOS after EOS at ${i}`);
    t.equal(count(ids, tok.eosId), text.split(tok.specialTokens.eos_token).length - 1, 'no EOS id beyond the EOS texts the template writes');
    // every target span ends at an EOS (the template's end of turn), and that EOS is a target
    let spans = 0;
    for (let i = 0; i < ids.length; i++) {
      if (target[i] === 1 && (i + 1 === ids.length || target[i + 1] === 0)) {
        spans++;
        t.equal(ids[i], tok.eosId, `case ${c}: a response span ends at the end-of-turn token (position ${i})`);
      }
    }
    t.equal(spans, turns, 'one span per assistant turn');
    // generation: the prompt ids have one BOS, as the training prompt does
    const prompt = { messages: record.messages.slice(0, -1) };
    const promptIds = encodePrompt(prompt, { tokenizer: tok, format });
    t.same(promptIds, ids.slice(0, promptIds.length), 'the generation prompt is the start of the training ids');
    t.equal(count(promptIds.slice(0, 2), tok.bosId!), 1, 'one BOS before the generation prompt');
  }
  const { texts, addBos } = renderPrompts('chat', tok, [{ instruction: words(5), input: '' }]);
  const generated = tok.encode(texts[0], { addBos });
  t.equal(generated[0], tok.bosId);
  t.not(generated[1], tok.bosId, 'generate --template chat puts exactly one BOS before the prompt');
  const tulu = renderPrompts('tulu', tok, [{ instruction: 'x', input: '' }]);
  t.ok(tulu.addBos, 'a template without BOS text still gets the BOS id');
}

t.test('chat template of the generated tokenizer: one BOS, no EOS after the end of turn, spans end at it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-chat-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await writeTokenizerFiles(dir, simpleTokenizerFiles('byte', 320));
  checkRules(t, await HfTokenizer.fromDir(dir), false);
});

t.test('Llama-2 chat template: the same rules, with its BOS per user turn', { skip: noShared }, async (t) => {
  checkRules(t, await HfTokenizer.fromDir(shared), true);
});

t.test('Llama-2 chat template ids equal transformers\' apply_chat_template', { skip: noShared || (fs.existsSync(fixtureFile) ? false : `no fixture ${fixtureFile}: make it with test/fixtures/chat-template/make_llama2_chat_fixture.py where transformers is installed`) }, async (t) => {
  const tok = await HfTokenizer.fromDir(shared);
  const format = promptFormat('chat', tok);
  const fixture = JSON.parse(fs.readFileSync(fixtureFile, 'utf8')) as { cases: Array<{ messages: ConversationRecord['messages']; full: number[]; prompt: number[] }> };
  t.ok(fixture.cases.length > 0);
  for (const [i, c] of fixture.cases.entries()) {
    t.same(encodeRecord({ messages: c.messages }, { tokenizer: tok, format }).example!.ids, c.full, `case ${i}: add_generation_prompt=False`);
    t.same(encodePrompt({ messages: c.messages.slice(0, -1) }, { tokenizer: tok, format }), c.prompt, `case ${i}: add_generation_prompt=True`);
  }
});
