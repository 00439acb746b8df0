/**
 * The named augmentation strategies of `seqtune augment`: each says which records it applies to and
 * builds the augmented record from the pure functions of sequential.ts and translate-v3.ts, getting
 * paraphrases and translations from a record field, the parallel rows, or the endpoint.
 */
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { ChatClient } from './endpoint';
import { AlpacaRecord, DataRecord } from './records';
import {
  FRAMES,
  multiStepThenAnswer,
  paraphraseStep,
  paraphraseThenAnswer,
  pick,
  REPEAT_VERBALISATIONS,
  repeatStep,
  repeatThenAnswer,
  STEP_PHRASES,
  translateThenAnswer,
} from './sequential';
import { translateThenPredict, V3Variant } from './translate-v3';

/** English names of language codes, for the endpoint's translation prompt. */
export const LANGUAGE_NAMES: Record<string, string> = {
  en: 'English', ar: 'Arabic', bg: 'Bulgarian', cs: 'Czech', de: 'German', el: 'Greek', es: 'Spanish', fi: 'Finnish', fr: 'French',
  hi: 'Hindi', ja: 'Japanese', pt: 'Portuguese', ru: 'Russian', th: 'Thai', tr: 'Turkish', vi: 'Vietnamese', zh: 'Chinese',
};

export interface StrategyContext {
  /** this record's generator (seeded from the run seed and the record's position) */
  rng: HostRng;
  /** the language the plan gave this record (translate strategies) */
  lang?: string;
  /** row i of each parallel file, by language ('en' is the record itself) */
  rows?: Record<string, AlpacaRecord>;
  client?: ChatClient;
  /** read paraphrases from this record field instead of the endpoint */
  paraphraseField?: string;
  /** draw phrasings from the verbalisation banks instead of the paper's fixed one */
  verbalise?: boolean;
}

export interface Strategy {
  name: string;
  /** cycles its records over the run's languages */
  multilingual: boolean;
  /** what it needs from outside the record: a paraphrase (field or endpoint), a translation (parallel rows or endpoint) */
  needs: 'paraphrase' | 'translation' | null;
  /** a static check, used to plan the mix before any endpoint call */
  eligible(record: AlpacaRecord, paraphraseField?: string): boolean;
  /** the augmented record, or null when the intermediate text could not be had */
  apply(record: AlpacaRecord, ctx: StrategyContext): Promise<DataRecord | null>;
}

const hasInput = (r: AlpacaRecord) => r.input.trim() !== '';
const noInput = (r: AlpacaRecord) => r.input.trim() === '';

/** A field read from a file sits in `extra`; an in-memory record may carry it at the top level. */
function fieldText(record: AlpacaRecord, field: string): string | undefined {
  const v = record.extra?.[field] ?? (record as unknown as Record<string, unknown>)[field];
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

const withParaphrase = (r: AlpacaRecord, field?: string) => hasInput(r) && (field === undefined || fieldText(r, field) !== undefined);

function needClient(ctx: StrategyContext, what: string): ChatClient {
  if (!ctx.client) throw new SeqtuneError(`${what} needs a source: a parallel file or record field, or an endpoint (--endpoint, --model)`, 'ERR_ARGUMENT');
  return ctx.client;
}

/** docs/method.md §1.1c's paraphrase request (the system prompt's "Paraphase" typo fixed). */
async function paraphraseOf(record: AlpacaRecord, ctx: StrategyContext): Promise<string> {
  if (ctx.paraphraseField !== undefined) return fieldText(record, ctx.paraphraseField) ?? '';
  const text = await needClient(ctx, 'paraphrase').complete({
    messages: [
      { role: 'system', content: 'Paraphrase the input sentence given by user.' },
      { role: 'user', content: `paraphrase this sentence:${record.input}` },
    ],
    temperature: 0,
    max_tokens: 256,
  });
  return text.trim();
}

async function translated(text: string, lang: string, ctx: StrategyContext): Promise<string> {
  const name = LANGUAGE_NAMES[lang] ?? lang;
  const out = await needClient(ctx, 'translate').complete({
    messages: [
      { role: 'system', content: `Translate the text given by the user into ${name}. Reply with the translation only.` },
      { role: 'user', content: text },
    ],
    temperature: 0,
    max_tokens: 1024,
  });
  return out.trim();
}

function requireLang(ctx: StrategyContext): string {
  if (!ctx.lang) throw new SeqtuneError('translate strategies need at least one language (--languages)', 'ERR_ARGUMENT');
  return ctx.lang;
}

function multiStep(name: string, order: Array<'repeat' | 'paraphrase'>): Strategy {
  return {
    name,
    multilingual: false,
    needs: 'paraphrase',
    eligible: withParaphrase,
    async apply(record, ctx) {
      const paraphrase = await paraphraseOf(record, ctx);
      if (paraphrase === '') return null;
      const phrase = (kind: 'repeat' | 'paraphrase') => (ctx.verbalise ? pick(STEP_PHRASES[kind], ctx.rng) : STEP_PHRASES[kind][0]);
      const steps = order.map((kind) => (kind === 'repeat' ? repeatStep(record, phrase('repeat'))! : paraphraseStep(paraphrase, phrase('paraphrase'))));
      return multiStepThenAnswer(record, steps, { frame: ctx.verbalise ? pick(FRAMES, ctx.rng) : FRAMES[0], strategy: name });
    },
  };
}

function v3(name: string, variant: V3Variant): Strategy {
  return {
    name,
    multilingual: true,
    needs: 'translation',
    eligible: noInput,
    async apply(record, ctx) {
      const lang = requireLang(ctx);
      let row = ctx.rows?.[lang];
      if (!row) {
        const instruction = await translated(record.instruction, lang, ctx);
        const output = variant === 'cross-lingual' ? await translated(record.output, lang, ctx) : '';
        if (instruction === '' || (variant === 'cross-lingual' && output === '')) return null;
        row = { instruction, input: '', output };
      }
      // the plan chose the language: offer only that one (and English) to the v3 draw
      return translateThenPredict({ en: record, [lang]: row }, { variant, rng: ctx.rng });
    },
  };
}

export const STRATEGIES: Record<string, Strategy> = {
  repeat: {
    name: 'repeat',
    multilingual: false,
    needs: null,
    eligible: hasInput,
    apply: async (record, ctx) => repeatThenAnswer(record, ctx.verbalise ? { prefix: pick(REPEAT_VERBALISATIONS, ctx.rng) } : {}),
  },
  paraphrase: {
    name: 'paraphrase',
    multilingual: false,
    needs: 'paraphrase',
    eligible: withParaphrase,
    apply: async (record, ctx) => paraphraseThenAnswer(record, await paraphraseOf(record, ctx)),
  },
  translate: {
    name: 'translate',
    multilingual: true,
    needs: 'translation',
    eligible: hasInput,
    async apply(record, ctx) {
      const lang = requireLang(ctx);
      const foreign = ctx.rows ? ctx.rows[lang]?.input ?? '' : await translated(record.input, lang, ctx);
      return translateThenAnswer(record, foreign, { lang });
    },
  },
  'repeat-paraphrase': multiStep('repeat-paraphrase', ['repeat', 'paraphrase']),
  'paraphrase-repeat': multiStep('paraphrase-repeat', ['paraphrase', 'repeat']),
  'translate-single-turn': v3('translate-single-turn', 'single-turn'),
  'translate-multi-turn': v3('translate-multi-turn', 'multi-turn'),
  'translate-cross-lingual': v3('translate-cross-lingual', 'cross-lingual'),
};

export function strategyByName(name: string): Strategy {
  const s = STRATEGIES[name];
  if (!s) throw new SeqtuneError(`unknown strategy '${name}' (${[...Object.keys(STRATEGIES), 'seq-instruct', 'direct-response', 'caption'].join(', ')})`, 'ERR_ARGUMENT');
  return s;
}
