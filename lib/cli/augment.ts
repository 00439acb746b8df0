/** `seqtune augment`: flags → runAugmentation (lib/data/run.ts), then the counts. */
import { SeqtuneError } from '../errors';
import { VqaMix } from '../data/caption';
import { MixMode } from '../data/mixing';
import { AugmentRequest, runAugmentation } from '../data/run';
import { Command, flagOptions, numberFlag, requireFlag, stringFlag, Values } from './command';

function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** `de=a.json,zh=b.json` → { de: 'a.json', zh: 'b.json' } */
function pairs(value: string | undefined, flag: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const item of list(value)!) {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1) throw new SeqtuneError(`--${flag} takes LANG=FILE pairs separated by commas, got '${item}'`, 'ERR_ARGUMENT');
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function integerFlag(values: Values, name: string): number | undefined {
  const n = numberFlag(values, name);
  if (n !== undefined && !Number.isInteger(n)) throw new SeqtuneError(`--${name} must be an integer, got ${n}`, 'ERR_ARGUMENT');
  return n;
}

/** The request the flags describe (exported for tests). */
export function augmentRequest(values: Values, command: Command): AugmentRequest {
  const strategies = list(requireFlag(values, 'strategy', command))!;
  const endpoint = stringFlag(values, 'endpoint');
  const model = stringFlag(values, 'model');
  if ((endpoint === undefined) !== (model === undefined)) throw new SeqtuneError('--endpoint and --model go together', 'ERR_ARGUMENT');
  const concurrency = integerFlag(values, 'concurrency');
  const questions = stringFlag(values, 'vqa-questions');
  const captions = stringFlag(values, 'captions');
  return {
    // caption data reads the VQA question file instead of --in
    in: questions !== undefined ? (stringFlag(values, 'in') ?? questions) : requireFlag(values, 'in', command),
    out: requireFlag(values, 'out', command),
    strategies,
    fraction: numberFlag(values, 'fraction'),
    count: integerFlag(values, 'count'),
    mode: stringFlag(values, 'mode') as MixMode | undefined,
    seed: integerFlag(values, 'seed'),
    languages: list(stringFlag(values, 'languages')),
    parallel: pairs(stringFlag(values, 'parallel'), 'parallel'),
    paraphraseField: stringFlag(values, 'paraphrase-field'),
    verbalise: values.verbalise === true,
    skipInvalid: values['skip-invalid'] === true,
    concurrency,
    iterations: integerFlag(values, 'iterations'),
    overwrite: values.overwrite === true,
    endpoint:
      endpoint === undefined
        ? undefined
        : {
            endpoint,
            model: model!,
            apiKeyEnv: stringFlag(values, 'api-key-env'),
            concurrency,
            retries: integerFlag(values, 'retries'),
            timeoutMs: integerFlag(values, 'timeout-ms'),
          },
    vqa: questions !== undefined || captions !== undefined ? { questions: questions ?? '', captions: captions ?? '', mix: stringFlag(values, 'vqa-mix') as VqaMix | undefined } : undefined,
  };
}

export const augmentCommand: Command = {
  name: 'augment',
  summary: 'build sequential-instruction data (repeat, paraphrase, translate, multi-step, seq-instruct, caption)',
  usage:
    'seqtune augment --in FILE --out FILE.jsonl --strategy NAME[,NAME] [--fraction F | --count N] [--mode replace|add] [--seed N] ' +
    '[--languages de,zh] [--parallel de=FILE,zh=FILE] [--paraphrase-field NAME] [--verbalise] [--skip-invalid] ' +
    '[--endpoint URL --model NAME [--api-key-env VAR] [--concurrency N] [--retries N] [--timeout-ms N]] [--iterations N] [--overwrite] ' +
    '[--vqa-questions FILE --captions FILE --vqa-mix base|sequential|merge] [--json]',
  options: flagOptions(
    [
      'in', 'out', 'strategy', 'fraction', 'count', 'mode', 'seed', 'languages', 'parallel', 'paraphrase-field',
      'endpoint', 'model', 'api-key-env', 'concurrency', 'retries', 'timeout-ms', 'iterations', 'vqa-questions',
      'captions', 'vqa-mix',
    ],
    ['verbalise', 'skip-invalid', 'overwrite', 'json'],
  ),
  async run(values) {
    const result = await runAugmentation(augmentRequest(values, augmentCommand));
    if (values.json) {
      console.log(JSON.stringify(result, null, 2));
      return 0;
    }
    const c = result.counts;
    console.log(`in ${c.in}, augmented ${c.augmented}, kept ${c.kept}, skipped ${c.skipped}, truncated ${c.truncated}`);
    if (result.kind === 'mix') {
      for (const [name, s] of Object.entries(result.report.strategies)) {
        console.log(`  ${name}: eligible ${s.eligible}, assigned ${s.assigned}, produced ${s.produced}`);
      }
    } else if (result.kind === 'seq-instruct') {
      for (const it of result.iterations) {
        const o = it.options;
        const f = it.parseFailures;
        console.log(
          `  iteration ${it.iteration} → ${it.file}: A ${o.A}, B ${o.B}, C ${o.C}, D ${o.D}; frozen ${it.frozen}, resumed ${it.resumed}; ` +
            `parse failures: classify ${f.classify}, rewrite ${f.rewrite}, response ${f.response}`,
        );
      }
    }
    return 0;
  },
};
