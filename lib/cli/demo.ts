import { SeqtuneError } from '../errors';
import { DEMO_PRESETS, formatTable, runDemo, TASK_NAMES } from '../demo';
import { Command, numberFlag, stringFlag, Values } from './command';

/** `--words 2-4` (or `3`) as [min, max]. */
function rangeFlag(values: Values, name: string): [number, number] | undefined {
  const raw = stringFlag(values, name);
  if (raw === undefined) return undefined;
  const match = /^(\d+)(?:-(\d+))?$/.exec(raw.trim());
  if (!match) throw new SeqtuneError(`--${name} must be N or MIN-MAX, got '${raw}'`, 'ERR_ARGUMENT');
  return [Number(match[1]), Number(match[2] ?? match[1])];
}

function integerFlag(values: Values, name: string): number | undefined {
  const n = numberFlag(values, name);
  if (n !== undefined && !(Number.isInteger(n) && n >= 0)) throw new SeqtuneError(`--${name} must be a non-negative integer, got ${n}`, 'ERR_ARGUMENT');
  return n;
}

/** The command line the flags amount to, recorded in the report. */
function commandLine(values: Values): string {
  const flags = Object.entries(values)
    .filter(([, v]) => v !== undefined && v !== false)
    .map(([k, v]) => (v === true ? `--${k}` : `--${k} ${String(v)}`));
  return ['seqtune demo', ...flags].join(' ');
}

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the embedded experiment: train IT and SIT models from scratch on synthetic tasks and compare them (minutes on a CPU, no download)',
  usage:
    `seqtune demo [--quick] [--out DIR] [--seed N] [--device auto|cpu|cuda:N] [--weights-dtype auto|f32|bf16] [--preset ${Object.keys(DEMO_PRESETS).join('|')}] ` +
    '[--token-budget N] [--items N] [--jobs 1|2] [--train-steps 2|3] [--shared-phrasings] ' +
    `[--unseen-task ${TASK_NAMES.join('|')}[,...]] [--words MIN-MAX] [--eval-words MIN-MAX] [--seq-fraction X]`,
  options: {
    quick: bool, out: str, seed: str, device: str, 'weights-dtype': str, preset: str, 'token-budget': str, items: str, jobs: str, 'train-steps': str,
    'shared-phrasings': bool, 'unseen-task': str, words: str, 'eval-words': str, 'seq-fraction': str,
  },
  async run(values) {
    const report = await runDemo({
      quick: values.quick === true,
      out: stringFlag(values, 'out'),
      seed: integerFlag(values, 'seed'),
      device: stringFlag(values, 'device'),
      weightsDtype: stringFlag(values, 'weights-dtype'),
      preset: stringFlag(values, 'preset'),
      tokenBudget: integerFlag(values, 'token-budget'),
      items: integerFlag(values, 'items'),
      jobs: integerFlag(values, 'jobs'),
      trainSteps: integerFlag(values, 'train-steps'),
      // held out unless asked: evaluated phrasings are new to both models
      heldoutPhrasings: values['shared-phrasings'] !== true,
      unseenTasks: stringFlag(values, 'unseen-task')?.split(',').filter(Boolean),
      words: rangeFlag(values, 'words'),
      evalWords: rangeFlag(values, 'eval-words'),
      seqFraction: numberFlag(values, 'seq-fraction'),
      command: commandLine(values),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    console.log(formatTable(report));
    console.log(`${report.wallSeconds.toFixed(0)} s; report, per-item results and demo.svg in ${stringFlag(values, 'out') ?? 'seqtune-demo'}`);
    return 0;
  },
};
