/**
 * v3 "translate then predict" (docs/method.md §1.3): examples without input, the instruction shown in another
 * language with a directive appended, in three variants:
 * - single-turn: user `{foreign instruction}{delim}{directive}`, assistant
 *   `English Translation: {instruction}\nAnswer: {output}`;
 * - multi-turn: the translation as turn 1 ("Please translate the query to English."), the answer as
 *   turn 2 ("Please answer the question.");
 * - cross-lingual: the control, `{instruction in language I}{delim}Please answer in {A}.` with the
 *   directive written in a language other than I, and the response in A.
 * The directive is in English with probability 0.5, otherwise in the instruction's language; the
 * delimiter is '\n' unless the instruction ends in '.' or '?', then ' ' or '\n' at random.
 *
 * Directive texts: English, Chinese and German single-turn directives are the paper's; every other
 * translation in DIRECTIVES is this project's own. Callers can pass their own table.
 */
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { AlpacaRecord, ConversationRecord } from './records';

export interface Directives {
  /** "Please translate the query to English and respond in English." */
  translateAndAnswer: string;
  /** "Please translate the query to English." */
  translateOnly: string;
  /** "Please answer the question." */
  answer: string;
  /** "Please answer in {L}." with {L} the answer language's name as this language writes it there */
  answerIn: string;
  /** names of languages, by code, in the form `answerIn` needs */
  names: Record<string, string>;
}

export const V3_LANGUAGES = ['en', 'bg', 'cs', 'de', 'es', 'fi', 'fr', 'pt', 'ru', 'zh'] as const;

function names(list: string): Record<string, string> {
  const words = list.split(',');
  return Object.fromEntries(V3_LANGUAGES.map((l, i) => [l, words[i]]));
}

export const DIRECTIVES: Record<string, Directives> = {
  en: {
    translateAndAnswer: 'Please translate the query to English and respond in English.',
    translateOnly: 'Please translate the query to English.',
    answer: 'Please answer the question.',
    answerIn: 'Please answer in {L}.',
    names: names('English,Bulgarian,Czech,German,Spanish,Finnish,French,Portuguese,Russian,Chinese'),
  },
  zh: {
    translateAndAnswer: '请把问题翻译成英文并用英文回答。',
    translateOnly: '请把问题翻译成英文。',
    answer: '请回答这个问题。',
    answerIn: '请用{L}回答。',
    names: names('英文,保加利亚语,捷克语,德语,西班牙语,芬兰语,法语,葡萄牙语,俄语,中文'),
  },
  de: {
    translateAndAnswer: 'Bitte übersetzen Sie die Frage ins Englische und beantworten Sie sie auf Englisch.',
    translateOnly: 'Bitte übersetzen Sie die Frage ins Englische.',
    answer: 'Bitte beantworten Sie die Frage.',
    answerIn: 'Bitte antworten Sie auf {L}.',
    names: names('Englisch,Bulgarisch,Tschechisch,Deutsch,Spanisch,Finnisch,Französisch,Portugiesisch,Russisch,Chinesisch'),
  },
  es: {
    translateAndAnswer: 'Por favor, traduce la pregunta al inglés y responde en inglés.',
    translateOnly: 'Por favor, traduce la pregunta al inglés.',
    answer: 'Por favor, responde la pregunta.',
    answerIn: 'Por favor, responde en {L}.',
    names: names('inglés,búlgaro,checo,alemán,español,finés,francés,portugués,ruso,chino'),
  },
  fr: {
    translateAndAnswer: 'Veuillez traduire la question en anglais et répondre en anglais.',
    translateOnly: 'Veuillez traduire la question en anglais.',
    answer: 'Veuillez répondre à la question.',
    answerIn: 'Veuillez répondre en {L}.',
    names: names('anglais,bulgare,tchèque,allemand,espagnol,finnois,français,portugais,russe,chinois'),
  },
  pt: {
    translateAndAnswer: 'Por favor, traduza a pergunta para o inglês e responda em inglês.',
    translateOnly: 'Por favor, traduza a pergunta para o inglês.',
    answer: 'Por favor, responda à pergunta.',
    answerIn: 'Por favor, responda em {L}.',
    names: names('inglês,búlgaro,tcheco,alemão,espanhol,finlandês,francês,português,russo,chinês'),
  },
  ru: {
    translateAndAnswer: 'Пожалуйста, переведите вопрос на английский язык и ответьте на английском.',
    translateOnly: 'Пожалуйста, переведите вопрос на английский язык.',
    answer: 'Пожалуйста, ответьте на вопрос.',
    answerIn: 'Пожалуйста, ответьте на {L} языке.',
    names: names('английском,болгарском,чешском,немецком,испанском,финском,французском,португальском,русском,китайском'),
  },
  bg: {
    translateAndAnswer: 'Моля, преведете въпроса на английски и отговорете на английски.',
    translateOnly: 'Моля, преведете въпроса на английски.',
    answer: 'Моля, отговорете на въпроса.',
    answerIn: 'Моля, отговорете на {L}.',
    names: names('английски,български,чешки,немски,испански,фински,френски,португалски,руски,китайски'),
  },
  cs: {
    translateAndAnswer: 'Přeložte prosím dotaz do angličtiny a odpovězte anglicky.',
    translateOnly: 'Přeložte prosím dotaz do angličtiny.',
    answer: 'Odpovězte prosím na otázku.',
    answerIn: 'Odpovězte prosím {L}.',
    names: names('anglicky,bulharsky,česky,německy,španělsky,finsky,francouzsky,portugalsky,rusky,čínsky'),
  },
  fi: {
    translateAndAnswer: 'Käännä kysymys englanniksi ja vastaa englanniksi.',
    translateOnly: 'Käännä kysymys englanniksi.',
    answer: 'Vastaa kysymykseen.',
    answerIn: 'Vastaa {L}.',
    names: names('englanniksi,bulgariaksi,tšekiksi,saksaksi,espanjaksi,suomeksi,ranskaksi,portugaliksi,venäjäksi,kiinaksi'),
  },
};

export type V3Variant = 'single-turn' | 'multi-turn' | 'cross-lingual';

export interface V3Options {
  variant: V3Variant;
  /** the caller's generator: every random choice is drawn from it, in a fixed order */
  rng: HostRng;
  directives?: Record<string, Directives>;
}

/** The delimiter rule of docs/method.md §1.3. */
export function v3Delimiter(instruction: string, rng: HostRng): string {
  return /[.?]$/.test(instruction) ? (rng.uniform() < 0.5 ? ' ' : '\n') : '\n';
}

function directivesFor(table: Record<string, Directives>, lang: string): Directives {
  const d = table[lang];
  if (!d) throw new SeqtuneError(`no translate directives for language '${lang}'`, 'ERR_ARGUMENT');
  return d;
}

/**
 * One v3 example from index-aligned rows: `rows.en` is the English record, the other keys the same
 * example in other languages (their `instruction` and, for cross-lingual, `output` are used).
 * Null when the English record has an input (v3 uses instructions without input only).
 */
export function translateThenPredict(rows: Record<string, AlpacaRecord>, options: V3Options): AlpacaRecord | ConversationRecord | null {
  const en = rows.en;
  if (!en) throw new SeqtuneError("translateThenPredict needs the English row under 'en'", 'ERR_ARGUMENT');
  if (en.input.trim() !== '') return null;
  const table = options.directives ?? DIRECTIVES;
  const { rng } = options;
  const foreign = Object.keys(rows).filter((l) => l !== 'en');
  if (foreign.length === 0) throw new SeqtuneError('translateThenPredict needs at least one non-English row', 'ERR_ARGUMENT');
  const base = { idx: en.idx, system_prompt: en.system_prompt };

  if (options.variant === 'cross-lingual') {
    const all = Object.keys(rows);
    const lang = all[rng.int(all.length)];
    const answerLang = all[rng.int(all.length)];
    const others = Object.keys(table).filter((l) => l !== lang);
    const d = directivesFor(table, others[rng.int(others.length)]);
    const name = d.names[answerLang];
    if (name === undefined) throw new SeqtuneError(`no name for language '${answerLang}' in the directives`, 'ERR_ARGUMENT');
    const instruction = rows[lang].instruction;
    return clean({
      ...base,
      instruction: instruction + v3Delimiter(instruction, rng) + d.answerIn.replace('{L}', name),
      input: '',
      output: rows[answerLang].output,
      lang,
      strategy: 'translate-cross-lingual',
    });
  }

  const lang = foreign[rng.int(foreign.length)];
  const d = directivesFor(table, rng.uniform() < 0.5 ? 'en' : lang);
  const instruction = rows[lang].instruction;
  const delim = v3Delimiter(instruction, rng);
  if (options.variant === 'single-turn') {
    return clean({
      ...base,
      instruction: instruction + delim + d.translateAndAnswer,
      input: '',
      output: `English Translation: ${en.instruction}\nAnswer: ${en.output}`,
      lang,
      strategy: 'translate-single-turn',
    });
  }
  const messages: ConversationRecord['messages'] = [];
  if (en.system_prompt) messages.push({ role: 'system', content: en.system_prompt });
  messages.push(
    { role: 'user', content: instruction + delim + d.translateOnly },
    { role: 'assistant', content: en.instruction },
    { role: 'user', content: d.answer },
    { role: 'assistant', content: en.output },
  );
  const out: ConversationRecord = { messages, lang, strategy: 'translate-multi-turn' };
  if (en.idx !== undefined) out.idx = en.idx;
  return out;
}

function clean(record: AlpacaRecord): AlpacaRecord {
  if (record.idx === undefined) delete record.idx;
  if (record.system_prompt === undefined) delete record.system_prompt;
  return record;
}
