/**
 * The augmentation run behind `seqtune augment`: plan the mix (mixing.ts), then stream the input
 * once more, applying each record's strategy (strategies.ts) and writing Alpaca-style JSONL in input
 * order (originals and augmented records; shuffling is the batch loader's job, per epoch).
 * `augmentRecords` does the same for in-memory records.
 *
 * The input is read twice (a planning pass, then the writing pass), so memory holds only the plan:
 * a few bytes per record. With parallel files (multilingual Alpaca, one file per language, row i
 * the same example in each), rows are read in lockstep and invalid records are always errors, since
 * skipping one would misalign the languages.
 */
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { orderedMap } from './concurrency';
import { ChatClient } from './endpoint';
import { mix32, MixOptions, MixPlan, planMix } from './mixing';
import { FileFormat, readRecords, zipRecords } from './read';
import { AlpacaRecord, asAlpaca, DataCounts, DataRecord, emptyCounts, requireKept } from './records';
import { Strategy, StrategyContext, strategyByName } from './strategies';
import { JsonlWriter } from './write';

export interface AugmentConfig extends MixOptions {
  strategies: string[];
  client?: ChatClient;
  paraphraseField?: string;
  verbalise?: boolean;
  /** records in flight when strategies call the endpoint (default 8) */
  concurrency?: number;
}

export interface AugmentFileOptions extends AugmentConfig {
  in: string;
  out: string;
  /** language → path of a file index-aligned with `in` */
  parallel?: Record<string, string>;
  skipInvalid?: boolean;
  format?: FileFormat;
}

export interface StrategyReport {
  /** records it could apply to */
  eligible: number;
  /** records the plan gave it */
  assigned: number;
  /** augmented records it produced (assigned minus those whose paraphrase/translation was empty) */
  produced: number;
}

export interface AugmentReport extends DataCounts {
  strategies: Record<string, StrategyReport>;
}

interface Item {
  record: DataRecord;
  position: number;
  rows?: Record<string, AlpacaRecord>;
}

/** Checked before any output is written: every strategy has where to get its intermediate text. */
function resolveStrategies(config: AugmentConfig, hasParallel: boolean): Strategy[] {
  if (config.strategies.length === 0) throw new SeqtuneError('give at least one strategy', 'ERR_ARGUMENT');
  if (config.strategies.length > 8) throw new SeqtuneError('at most 8 strategies in one run', 'ERR_ARGUMENT');
  const strategies = config.strategies.map(strategyByName);
  if (strategies.some((s) => s.multilingual) && !(config.languages && config.languages.length > 0)) {
    throw new SeqtuneError('translate strategies need at least one language (--languages)', 'ERR_ARGUMENT');
  }
  for (const s of strategies) {
    if (config.client) continue;
    if (s.needs === 'paraphrase' && config.paraphraseField === undefined) {
      throw new SeqtuneError(`${s.name} needs paraphrases: a record field (--paraphrase-field) or an endpoint (--endpoint, --model)`, 'ERR_ARGUMENT');
    }
    if (s.needs === 'translation' && !hasParallel) {
      throw new SeqtuneError(`${s.name} needs translations: parallel files (--parallel) or an endpoint (--endpoint, --model)`, 'ERR_ARGUMENT');
    }
  }
  return strategies;
}

/** Bit s set when strategy s can apply to the record. */
function eligibilityMask(record: DataRecord, strategies: Strategy[], config: AugmentConfig): number {
  const alpaca = asAlpaca(record);
  if (!alpaca) return 0;
  let mask = 0;
  strategies.forEach((s, i) => {
    if (s.eligible(alpaca, config.paraphraseField)) mask |= 1 << i;
  });
  return mask;
}

function makePlan(masks: Uint8Array, strategies: Strategy[], config: AugmentConfig): MixPlan {
  return planMix(masks.length, strategies.length, (s, i) => (masks[i] & (1 << s)) !== 0, config, strategies.map((s) => s.multilingual));
}

function newReport(strategies: Strategy[], plan: MixPlan): AugmentReport {
  const report: AugmentReport = { ...emptyCounts(), strategies: {} };
  strategies.forEach((s, i) => (report.strategies[s.name] = { eligible: plan.eligible[i], assigned: plan.assigned[i], produced: 0 }));
  return report;
}

/** Applies the plan to a stream of items, yielding the output records in order. */
async function* applyPlan(items: AsyncIterable<Item>, plan: MixPlan, strategies: Strategy[], config: AugmentConfig, report: AugmentReport): AsyncGenerator<DataRecord> {
  const seed = config.seed ?? 0;
  const results = orderedMap(items, config.concurrency ?? 8, async (item): Promise<[DataRecord, DataRecord | null]> => {
    const s = plan.strategy[item.position];
    if (s < 0) return [item.record, null];
    const ctx: StrategyContext = {
      rng: new HostRng(mix32(seed, item.position)),
      rows: item.rows,
      client: config.client,
      paraphraseField: config.paraphraseField,
      verbalise: config.verbalise,
    };
    if (strategies[s].multilingual) ctx.lang = config.languages![plan.language[item.position]];
    const out = await strategies[s].apply(asAlpaca(item.record)!, ctx);
    if (out) report.strategies[strategies[s].name].produced++;
    return [item.record, out];
  });
  for await (const [original, out] of results) {
    if (!out || config.mode === 'add') yield original;
    if (out) {
      report.augmented++;
      yield out;
    }
  }
}

/** Augments a file into Alpaca-style JSONL; returns the counts. */
export async function augmentFile(options: AugmentFileOptions): Promise<AugmentReport> {
  const strategies = resolveStrategies(options, options.parallel !== undefined);
  if (options.parallel && 'en' in options.parallel) throw new SeqtuneError("the input file is the English ('en') side; do not list it in parallel", 'ERR_ARGUMENT');
  const missing = options.parallel ? (options.languages ?? []).filter((l) => !(l in options.parallel!)) : [];
  if (missing.length > 0) throw new SeqtuneError(`no parallel file for language(s) ${missing.join(', ')}`, 'ERR_ARGUMENT');
  const skipInvalid = options.parallel ? false : options.skipInvalid;
  // planning pass: one byte per record
  let masks = new Uint8Array(1024);
  let n = 0;
  for await (const { record } of readRecords(options.in, { skipInvalid, format: options.format })) {
    if (n === masks.length) {
      const grown = new Uint8Array(masks.length * 2);
      grown.set(masks);
      masks = grown;
    }
    masks[n++] = eligibilityMask(record, strategies, options);
  }
  const plan = makePlan(masks.subarray(0, n), strategies, options);
  const report = newReport(strategies, plan);

  async function* items(): AsyncGenerator<Item> {
    let position = 0;
    if (options.parallel) {
      for await (const row of zipRecords({ en: options.in, ...options.parallel })) {
        report.in++;
        const rows: Record<string, AlpacaRecord> = {};
        for (const [lang, r] of Object.entries(row)) {
          const a = asAlpaca(r.record);
          if (a) rows[lang] = a;
        }
        yield { record: row.en.record, position: position++, rows };
      }
    } else {
      for await (const { record } of readRecords(options.in, { skipInvalid, format: options.format, counts: report })) {
        yield { record, position: position++ };
      }
    }
  }

  const writer = await JsonlWriter.open(options.out);
  try {
    for await (const record of applyPlan(items(), plan, strategies, options, report)) {
      await writer.write(record);
      report.kept++;
    }
    requireKept(options.in, report);
    await writer.commit();
  } finally {
    await writer.close();
  }
  return report;
}

/**
 * The same run over in-memory records; `parallel[lang][i]` is record i in that language.
 */
export async function augmentRecords(
  records: readonly DataRecord[],
  config: AugmentConfig & { parallel?: Record<string, readonly AlpacaRecord[]> },
): Promise<{ records: DataRecord[]; report: AugmentReport }> {
  const strategies = resolveStrategies(config, config.parallel !== undefined);
  for (const [lang, list] of Object.entries(config.parallel ?? {})) {
    if (list.length !== records.length) throw new SeqtuneError(`parallel records for '${lang}' have ${list.length} rows, the input ${records.length}`, 'ERR_DATA');
  }
  const masks = Uint8Array.from(records, (r) => eligibilityMask(r, strategies, config));
  const plan = makePlan(masks, strategies, config);
  const report = newReport(strategies, plan);
  async function* items(): AsyncGenerator<Item> {
    for (let i = 0; i < records.length; i++) {
      report.in++;
      const en = asAlpaca(records[i]);
      const rows = config.parallel && en ? { en, ...Object.fromEntries(Object.entries(config.parallel).map(([l, list]) => [l, list[i]])) } : undefined;
      yield { record: records[i], position: i, rows };
    }
  }
  const out: DataRecord[] = [];
  for await (const record of applyPlan(items(), plan, strategies, config, report)) out.push(record);
  report.kept = out.length;
  return { records: out, report };
}
