import t from 'tap';
import { DIRECTIVES, translateThenPredict, V3_LANGUAGES, v3Delimiter } from '../../lib/data/translate-v3';
import { ConversationRecord, AlpacaRecord } from '../../lib/data/records';
import { HostRng } from '../../lib/rng';
import { testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);

const en = { instruction: 'Name three primary colors.', input: '', output: 'Red, blue and yellow.', idx: 4 };
const rows: Record<string, AlpacaRecord> = {
  en,
  de: { instruction: 'Nenne drei Grundfarben.', input: '', output: 'Rot, Blau und Gelb.' },
  zh: { instruction: '说出三种原色', input: '', output: '红、蓝、黄。' },
};

t.test('the paper directives are verbatim, and every language has a full table', async (t) => {
  t.equal(DIRECTIVES.en.translateAndAnswer, 'Please translate the query to English and respond in English.');
  t.equal(DIRECTIVES.zh.translateAndAnswer, '请把问题翻译成英文并用英文回答。');
  t.equal(DIRECTIVES.de.translateAndAnswer, 'Bitte übersetzen Sie die Frage ins Englische und beantworten Sie sie auf Englisch.');
  for (const l of V3_LANGUAGES) {
    for (const m of V3_LANGUAGES) t.ok(DIRECTIVES[l].names[m], `${l} names ${m}`);
    t.match(DIRECTIVES[l].answerIn, /\{L\}/);
  }
});

t.test('single-turn: foreign instruction + delimiter + directive; English translation then answer', async (t) => {
  const rng = new HostRng(seed);
  const langs = new Map<string, number>();
  let english = 0;
  const n = 400;
  for (let i = 0; i < n; i++) {
    const out = translateThenPredict(rows, { variant: 'single-turn', rng }) as AlpacaRecord;
    const lang = out.lang!;
    langs.set(lang, (langs.get(lang) ?? 0) + 1);
    const f = rows[lang].instruction;
    t.ok(out.instruction.startsWith(f), 'starts with the foreign instruction');
    const rest = out.instruction.slice(f.length);
    const delim = rest[0];
    // docs/method.md §1.3: '\n' unless the instruction ends in '.' or '?'
    if (!/[.?]$/.test(f)) t.equal(delim, '\n');
    else t.ok(delim === ' ' || delim === '\n');
    const directive = rest.slice(1);
    t.ok(directive === DIRECTIVES.en.translateAndAnswer || directive === DIRECTIVES[lang].translateAndAnswer);
    if (directive === DIRECTIVES.en.translateAndAnswer) english++;
    t.equal(out.output, 'English Translation: Name three primary colors.\nAnswer: Red, blue and yellow.');
    t.equal(out.input, '');
    t.equal(out.idx, 4);
  }
  t.same([...langs.keys()].sort(), ['de', 'zh'], 'English is never the shown language');
  // directive language is English with probability 0.5: 400 draws, 5 sigma ≈ 50
  t.ok(Math.abs(english - n / 2) < 50, `English directive ${english}/${n}`);
});

t.test('multi-turn: translation as turn 1, answer as turn 2', async (t) => {
  const out = translateThenPredict({ en: { ...en, system_prompt: 'S' }, de: rows.de }, { variant: 'multi-turn', rng: new HostRng(seed) }) as ConversationRecord;
  t.equal(out.lang, 'de');
  t.same(out.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user', 'assistant']);
  t.ok(out.messages[1].content.startsWith('Nenne drei Grundfarben.'));
  t.ok([DIRECTIVES.en.translateOnly, DIRECTIVES.de.translateOnly].some((d) => out.messages[1].content.endsWith(d)));
  t.equal(out.messages[2].content, en.instruction);
  t.ok([DIRECTIVES.en.answer, DIRECTIVES.de.answer].includes(out.messages[3].content));
  t.equal(out.messages[4].content, en.output);
});

t.test('cross-lingual control: directive in another language, response in the named one', async (t) => {
  const rng = new HostRng(seed ^ 1);
  for (let i = 0; i < 100; i++) {
    const out = translateThenPredict(rows, { variant: 'cross-lingual', rng }) as AlpacaRecord;
    const shown = out.lang!;
    t.ok(out.instruction.startsWith(rows[shown].instruction));
    const answerLang = Object.keys(rows).find((l) => rows[l].output === out.output)!;
    t.ok(answerLang, 'the response is one language row');
    const directive = out.instruction.slice(rows[shown].instruction.length + 1);
    const by = Object.keys(DIRECTIVES).filter((l) => DIRECTIVES[l].answerIn.replace('{L}', DIRECTIVES[l].names[answerLang]) === directive);
    t.ok(by.length > 0 && !by.includes(shown), `directive '${directive}' names ${answerLang}, written in a language other than ${shown}`);
  }
});

t.test('records with input and bad arguments', async (t) => {
  t.equal(translateThenPredict({ ...rows, en: { ...en, input: 'x' } }, { variant: 'single-turn', rng: new HostRng(1) }), null);
  t.throws(() => translateThenPredict({ de: rows.de }, { variant: 'single-turn', rng: new HostRng(1) }), /English row/);
  t.throws(() => translateThenPredict({ en }, { variant: 'single-turn', rng: new HostRng(1) }), /non-English row/);
  t.throws(() => translateThenPredict({ en, xx: rows.de }, { variant: 'single-turn', rng: new HostRng(2), directives: { de: DIRECTIVES.de } }), /no translate directives for language '(en|xx)'/);
  t.throws(() => translateThenPredict({ en, xx: rows.de }, { variant: 'cross-lingual', rng: new HostRng(3), directives: { de: { ...DIRECTIVES.de, names: {} } } }), /no name for language '(en|xx)'/);
  t.equal(v3Delimiter('no period', new HostRng(1)), '\n');
});
