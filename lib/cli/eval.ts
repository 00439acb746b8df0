/**
 * `seqtune eval`: a thin wrapper over lib/eval. Three forms:
 *   generate and score:  --model DIR [--adapter DIR] --bench NAME --data PATH [--out DIR] ...
 *   score outputs:       --bench NAME --data PATH --predictions FILE.jsonl [--out DIR]
 *   compare two runs:    compare RUN_A RUN_B
 * SeqEval adds the LLM judge with --judge-endpoint/--judge-model (key from SEQTUNE_JUDGE_API_KEY).
 * The model is loaded through an injectable LoadGenerator; the default one is the model module's
 * createGenerator, required lazily so the other forms work in a build without it.
 */
import { basename, extname, join } from 'node:path';
import { SeqtuneError } from '../errors';
import { BenchOptions } from '../eval/bench';
import { compareRuns, formatComparison } from '../eval/compare';
import { LoadGenerator } from '../eval/generator';
import { formatJudgeSummary, judgeSeqEval, JudgeSummary } from '../eval/judge/seqeval-judge';
import { scorePredictions } from '../eval/predictions';
import { resultsPath } from '../eval/results';
import { runEval } from '../eval/run';
import { EvalSummary, formatSummary } from '../eval/summary';
import { EVAL_TEMPLATES, EvalTemplate, parseTemplate } from '../eval/template';
import { defaultTemplate } from '../model/trained-template';
import { ProgressLine } from './progress';
import { Command, flagOptions, numberFlag, requireFlag, stringFlag, Values } from './command';

/**
 * A LoadGenerator that requires `modulePath` (relative to this file) on first use and calls its
 * createGenerator; a build without that module gets a clear error instead of a stack trace.
 */
export function generatorFromModule(modulePath: string): LoadGenerator {
  return (modelDir, adapterDir, device, weightsDtype) => {
    let factory: { createGenerator?: LoadGenerator };
    try {
      factory = require(modulePath);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      // only the module itself being absent means "not in this build"; its own failures propagate
      if (e.code === 'MODULE_NOT_FOUND' && e.message.includes(basename(modulePath))) {
        throw new SeqtuneError('generation from a model is not available in this build (no model generator module); score existing outputs with --predictions FILE.jsonl', 'ERR_NOT_IMPLEMENTED');
      }
      throw error;
    }
    if (typeof factory.createGenerator !== 'function') throw new SeqtuneError(`${modulePath} does not export createGenerator`, 'ERR_INTERNAL');
    return factory.createGenerator(modelDir, adapterDir, device, weightsDtype);
  };
}

export const loadModelGenerator = generatorFromModule('../model/generator-factory');

const USAGE = [
  'seqtune eval --model DIR|ORG/NAME[@REV] [--adapter DIR] [--device D] [--weights-dtype auto|f32|bf16] --bench xquad|mgsm|gsm8k|csqa|seqeval|synthetic --data PATH [--out DIR] [--template tulu|tulu-system|alpaca|raw (default: the one the adapter or model was trained with, else tulu)] [--limit N] [--batch-size N] [--max-new-tokens N]',
  '       seqtune eval --bench NAME --data PATH --predictions FILE.jsonl [--out DIR] [--limit N]',
  '       seqtune eval compare RUN_A RUN_B [--samples N] [--seed N]',
  '  bench options: --mode cot-en|trans-cot (mgsm), --exemplars FILE (gsm8k) or DIR (mgsm), --english-gold FILE (xquad)',
  "  mgsm --data, either layout: the SIT authors' folder (test/<lang>.jsonl, exemplars in examples/<lang>.jsonl beside test/) or one test/<lang>.jsonl;",
  "    or the official release: a folder of mgsm_<lang>.tsv (question<TAB>answer_number) or one such file, exemplars from --exemplars DIR (the authors' examples/) or examples/ beside them",
  '  seqeval judge: --judge-endpoint URL --judge-model NAME [--reference FILE] [--judge-concurrency N] [--judge-retries N] [--judge-timeout SECONDS]; key in SEQTUNE_JUDGE_API_KEY',
  '  --json prints the result as JSON',
].join('\n');

function integerFlag(values: Values, name: string): number | undefined {
  const n = numberFlag(values, name);
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) throw new SeqtuneError(`--${name} must be a non-negative integer, got ${n}`, 'ERR_ARGUMENT');
  return n;
}

/** Bench options, refusing ones the bench would silently ignore. */
function benchOptions(values: Values, bench: string): BenchOptions {
  const owners: [keyof BenchOptions, string, string[]][] = [
    ['mode', 'mode', ['mgsm']],
    ['exemplars', 'exemplars', ['gsm8k', 'mgsm']],
    ['englishGold', 'english-gold', ['xquad']],
  ];
  const options: BenchOptions = {};
  for (const [key, flag, owner] of owners) {
    const v = stringFlag(values, flag);
    if (v === undefined) continue;
    if (!owner.includes(bench)) throw new SeqtuneError(`--${flag} applies to --bench ${owner.join(' and ')} only`, 'ERR_ARGUMENT');
    options[key] = v;
  }
  return options;
}

/** --template, else the template the adapter (or model) was trained with, else tulu. */
async function evalTemplate(values: Values, model: string): Promise<EvalTemplate> {
  const explicit = stringFlag(values, 'template');
  if (explicit !== undefined) return parseTemplate(explicit);
  const { template, from } = await defaultTemplate(model, stringFlag(values, 'adapter'), 'tulu');
  if (template === 'chat') {
    throw new SeqtuneError(`${from} says this was trained with the model's chat template, which eval cannot render; give --template (${EVAL_TEMPLATES.join(', ')})`, 'ERR_ARGUMENT');
  }
  return template;
}

function defaultOutDir(bench: string, data: string, options: BenchOptions): string {
  const name = basename(data, extname(data));
  return join('eval-runs', `${bench}-${name}${options.mode ? `-${options.mode}` : ''}`);
}

async function judgeIfAsked(values: Values, data: string, predictionsFile: string, outDir: string | undefined, limit: number | undefined): Promise<JudgeSummary | null> {
  const endpoint = stringFlag(values, 'judge-endpoint');
  if (endpoint === undefined) return null;
  if (outDir === undefined) throw new SeqtuneError('--out DIR is needed to keep the judge verdicts', 'ERR_ARGUMENT');
  const timeout = numberFlag(values, 'judge-timeout');
  const progress = new ProgressLine();
  return judgeSeqEval({
    dataFile: data,
    predictionsFile,
    outDir,
    endpoint,
    model: stringFlag(values, 'judge-model') ?? '',
    referenceFile: stringFlag(values, 'reference'),
    limit,
    concurrency: integerFlag(values, 'judge-concurrency'),
    maxRetries: integerFlag(values, 'judge-retries'),
    timeoutMs: timeout === undefined ? undefined : Math.round(timeout * 1000),
    onProgress: values.json ? undefined : (done, total) => {
      progress.update(done, total, `judged ${done}/${total}`);
      if (done === total) progress.end();
    },
  });
}

function checkJudgeFlags(values: Values, bench: string): void {
  const judgeFlags = ['judge-endpoint', 'judge-model', 'reference', 'judge-concurrency', 'judge-retries', 'judge-timeout'].filter((f) => values[f] !== undefined);
  if (judgeFlags.length && bench !== 'seqeval') throw new SeqtuneError(`--${judgeFlags[0]} applies to --bench seqeval only`, 'ERR_ARGUMENT');
  if (judgeFlags.length && values['judge-endpoint'] === undefined) throw new SeqtuneError(`--${judgeFlags[0]} needs --judge-endpoint`, 'ERR_ARGUMENT');
}

function report(values: Values, summary: EvalSummary, judge: JudgeSummary | null, outDir: string | undefined): void {
  if (values.json) {
    console.log(JSON.stringify({ summary, judge, outDir: outDir ?? null }, null, 2));
    return;
  }
  console.log(formatSummary(summary));
  if (judge) console.log(formatJudgeSummary(judge));
  else if (summary.bench === 'seqeval') console.log('following rate: not judged (give --judge-endpoint and --judge-model)');
  if (outDir !== undefined) console.log(`written to ${outDir}`);
}

/** 1 when judging was asked for and no request got a verdict (a wrong endpoint, a dead server): a rate of nothing is no result. */
function judgeExitCode(judge: JudgeSummary | null): number {
  const c = judge?.follow.overall;
  if (!c || c.n === 0 || c.followed + c.notFollowed + c.refused + c.malformed > 0) return 0;
  console.error(`seqtune eval: error: every judge request failed (${c.errors} errors, ${c.timedOut} timeouts of ${c.n} items); check --judge-endpoint and --judge-model, then rerun to judge again`);
  return 1;
}

async function runCompare(values: Values, positionals: string[]): Promise<number> {
  if (positionals.length !== 3) throw new SeqtuneError(`compare takes two run folders\nusage: ${USAGE}`, 'ERR_ARGUMENT');
  const comparison = await compareRuns(positionals[1], positionals[2], { samples: integerFlag(values, 'samples'), seed: integerFlag(values, 'seed') });
  console.log(values.json ? JSON.stringify(comparison, null, 2) : formatComparison(comparison));
  return 0;
}

export function makeEvalCommand(loadGenerator: LoadGenerator = loadModelGenerator): Command {
  const command: Command = {
    name: 'eval',
    summary: 'evaluate a model (or existing outputs) on XQuAD, MGSM, GSM8K, CSQA, SeqEval or the synthetic tasks; compare two runs',
    usage: USAGE,
    positionals: { max: 3 },
    options: flagOptions(
      [
        'model', 'adapter', 'device', 'weights-dtype', 'bench', 'data', 'predictions', 'out', 'template', 'limit',
        'batch-size', 'max-new-tokens', 'mode', 'exemplars', 'english-gold', 'judge-endpoint', 'judge-model',
        'reference', 'judge-concurrency', 'judge-retries', 'judge-timeout', 'samples', 'seed',
      ],
      ['json'],
    ),
    async run(values, positionals) {
      if (positionals[0] === 'compare') return runCompare(values, positionals);
      if (positionals.length) throw new SeqtuneError(`unexpected argument '${positionals[0]}'\nusage: ${USAGE}`, 'ERR_ARGUMENT');
      const bench = requireFlag(values, 'bench', command);
      const data = requireFlag(values, 'data', command);
      const options = benchOptions(values, bench);
      checkJudgeFlags(values, bench);
      const limit = integerFlag(values, 'limit');
      const predictions = stringFlag(values, 'predictions');
      const model = stringFlag(values, 'model');
      if ((predictions === undefined) === (model === undefined)) throw new SeqtuneError(`give either --model or --predictions\nusage: ${USAGE}`, 'ERR_ARGUMENT');

      if (predictions !== undefined) {
        const outDir = stringFlag(values, 'out');
        const { summary } = await scorePredictions({ bench, dataFile: data, predictionsFile: predictions, benchOptions: options, limit, outDir });
        const judge = await judgeIfAsked(values, data, predictions, outDir, limit);
        report(values, summary, judge, outDir);
        return judgeExitCode(judge);
      }
      const outDir = stringFlag(values, 'out') ?? defaultOutDir(bench, data, options);
      const template = await evalTemplate(values, model!);
      const progress = new ProgressLine();
      const generator = await loadGenerator(model!, stringFlag(values, 'adapter'), stringFlag(values, 'device'), stringFlag(values, 'weights-dtype'));
      const { summary, resumed } = await runEval({
        bench,
        dataFile: data,
        generator,
        outDir,
        template,
        limit,
        batchSize: integerFlag(values, 'batch-size'),
        maxNewTokens: integerFlag(values, 'max-new-tokens'),
        benchOptions: options,
        onProgress: values.json ? undefined : (done, total) => progress.update(done, total, `${done}/${total} items`),
      });
      if (!values.json) progress.end(resumed ? `(${resumed} resumed from ${outDir})` : '');
      const judge = await judgeIfAsked(values, data, resultsPath(outDir), outDir, limit);
      report(values, summary, judge, outDir);
      return judgeExitCode(judge);
    },
  };
  return command;
}

export const evalCommand = makeEvalCommand();
