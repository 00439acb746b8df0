/**
 * compareRuns and the paired bootstrap: hand-computed differences, and CI properties (seeded
 * determinism, degenerate cases, containment, width against the normal approximation).
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareRuns, formatComparison, pairedBootstrap } from '../../lib/eval/compare';
import { scorePredictions } from '../../lib/eval/predictions';
import { writeXquad, XQUAD_GOLDS } from './fixtures';

/** A reproducible 0/1 sample with success probability p (a tiny LCG, independent of the code under test). */
function bernoulli(n: number, p: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 < p ? 1 : 0;
  });
}

t.test('paired bootstrap: deterministic per seed, degenerate cases exact', async (t) => {
  const a = bernoulli(300, 0.5, 1);
  const b = bernoulli(300, 0.6, 2);
  const r1 = pairedBootstrap(a, b, { samples: 2000, seed: 7 });
  t.same(pairedBootstrap(a, b, { samples: 2000, seed: 7 }), r1, 'same seed, same CI');
  const r2 = pairedBootstrap(a, b, { samples: 2000, seed: 8 });
  t.equal(r2.diff, r1.diff, 'the observed difference does not depend on the seed');
  t.not(r2.low, r1.low, 'another seed resamples differently');
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
  t.ok(Math.abs(r1.diff - (mean(b) - mean(a))) < 1e-12);
  t.ok(r1.low < r1.diff && r1.diff < r1.high, 'the CI contains the observed difference');

  t.same(pairedBootstrap([1, 0, 1, 1], [1, 0, 1, 1], { samples: 500 }), { diff: 0, low: 0, high: 0 }, 'identical runs');
  t.same(pairedBootstrap([0, 0, 0], [1, 1, 1], { samples: 500 }), { diff: 1, low: 1, high: 1 }, 'B always right, A never');
  // every pair differs the same way except one tie: the CI stays within [0, 1] and above 0.5
  const tight = pairedBootstrap([0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], { samples: 2000 });
  t.ok(tight.low >= 0.5 && tight.high <= 1, JSON.stringify(tight));

  t.throws(() => pairedBootstrap([1], [1, 0]), { code: 'ERR_ARGUMENT' });
  t.throws(() => pairedBootstrap([], []), { code: 'ERR_ARGUMENT' });
  t.throws(() => pairedBootstrap([1], [1], { samples: 0 }), { code: 'ERR_ARGUMENT' });
  t.throws(() => pairedBootstrap([1], [1], { confidence: 1 }), { code: 'ERR_ARGUMENT' });
});

t.test('paired bootstrap: width matches the normal approximation and shrinks with n', async (t) => {
  const n = 2000;
  const a = bernoulli(n, 0.45, 11);
  const b = bernoulli(n, 0.55, 12);
  const d = a.map((x, i) => b[i] - x);
  const md = d.reduce((x, y) => x + y, 0) / n;
  const sd = Math.sqrt(d.reduce((s, x) => s + (x - md) ** 2, 0) / (n - 1));
  const half = (1.96 * sd) / Math.sqrt(n);
  const r = pairedBootstrap(a, b, { samples: 4000, seed: 3 });
  t.ok(Math.abs(r.high - r.low - 2 * half) / (2 * half) < 0.1, `width ${r.high - r.low} vs normal ${2 * half}`);
  t.ok(Math.abs((r.low + r.high) / 2 - md) < 0.2 * half, 'centred on the observed difference');
  const small = pairedBootstrap(a.slice(0, 200), b.slice(0, 200), { samples: 4000, seed: 3 });
  t.ok(small.high - small.low > 2 * (r.high - r.low), 'a tenth of the items gives a CI about three times wider');

  // pairing matters: when B = A with a few flips, the paired CI is far narrower than an unpaired one would be
  const flipped = a.map((x, i) => (i % 50 === 0 ? 1 - x : x));
  const paired = pairedBootstrap(a, flipped, { samples: 2000, seed: 5 });
  t.ok(paired.high - paired.low < half, `paired width ${paired.high - paired.low}`);
});

t.test('compareRuns: B − A per metric, overall and per group, from two run folders', async (t) => {
  const dir = t.testdir({});
  const vi = writeXquad(dir, 'xquad_trans_vi.json');
  writeXquad(dir, 'xquad_trans_tr.json');
  const write = (name: string, outputs: (lang: string, i: number) => string) => {
    const file = join(dir, name);
    const rows = ['tr', 'vi'].flatMap((lang) => XQUAD_GOLDS.map((_, i) => JSON.stringify({ id: `${lang}/${i}`, output: outputs(lang, i) })));
    writeFileSync(file, rows.join('\n') + '\n');
    return file;
  };
  // A: vi answers 2 of 7 with a marker; tr answers all 7 without a marker
  const predA = write('a.jsonl', (lang, i) => (lang === 'vi' ? (i < 2 ? `Result: ${XQUAD_GOLDS[i]}` : 'Result: no') : XQUAD_GOLDS[i]));
  // B: vi answers 6 of 7 with a marker; tr answers all 7 with a marker
  const predB = write('b.jsonl', (lang, i) => (lang === 'vi' ? (i < 6 ? `Answer: ${XQUAD_GOLDS[i]}` : 'Answer: no') : `Answer is ${XQUAD_GOLDS[i]}`));
  await scorePredictions({ bench: 'xquad', dataFile: dir, predictionsFile: predA, outDir: join(dir, 'A') });
  await scorePredictions({ bench: 'xquad', dataFile: dir, predictionsFile: predB, outDir: join(dir, 'B') });
  const c = await compareRuns(join(dir, 'A'), join(dir, 'B'), { samples: 1000, seed: 1 });
  t.same([c.bench, c.paired, c.onlyInA, c.onlyInB], ['xquad', 14, 0, 0]);
  const get = (list: typeof c.overall, m: string) => list.find((x) => x.metric === m)!;
  t.match(get(c.groups.vi, 'accuracy'), { n: 7, a: 2 / 7, b: 6 / 7 });
  t.ok(Math.abs(get(c.groups.vi, 'accuracy').diff - 4 / 7) < 1e-12);
  t.match(get(c.groups.tr, 'followRate'), { n: 7, a: 0, b: 1, diff: 1, ci: [1, 1] });
  t.match(get(c.overall, 'accuracy'), { n: 14, a: 9 / 14, b: 13 / 14 });
  const acc = get(c.overall, 'accuracy');
  t.ok(acc.ci[0] <= acc.diff && acc.diff <= acc.ci[1]);
  t.match(formatComparison(c), /overall\s+accuracy\s+14\s+64\.3\s+92\.9\s+\+28\.6/);

  // a single-language run names its items by index, so it cannot be paired with a folder run
  writeFileSync(join(dir, 'c.jsonl'), XQUAD_GOLDS.map((g, i) => JSON.stringify({ id: i, output: g })).join('\n'));
  await scorePredictions({ bench: 'xquad', dataFile: vi, predictionsFile: join(dir, 'c.jsonl'), outDir: join(dir, 'C') });
  await t.rejects(compareRuns(join(dir, 'A'), join(dir, 'C')), { code: 'ERR_ARGUMENT', message: /share no item ids/ }, 'ids "vi/0" and "0" differ');

  writeFileSync(join(dir, 'gsm.jsonl'), '{"question": "q", "answer": "#### 1"}\n');
  writeFileSync(join(dir, 'g.jsonl'), '{"id": 0, "output": "1"}\n');
  await scorePredictions({ bench: 'gsm8k', dataFile: join(dir, 'gsm.jsonl'), predictionsFile: join(dir, 'g.jsonl'), outDir: join(dir, 'G') });
  await t.rejects(compareRuns(join(dir, 'A'), join(dir, 'G')), { code: 'ERR_ARGUMENT', message: /cannot compare a xquad run with a gsm8k run/ });
  await t.rejects(compareRuns(join(dir, 'A'), join(dir, 'nowhere')), { code: 'ERR_ARGUMENT', message: /not an eval run folder/ });
});

t.test('compareRuns: partial overlap is counted; SeqEval follow comes from judge verdicts', async (t) => {
  const dir = t.testdir({
    'seq.json': JSON.stringify([1, 1, 2, 2].map((depth, i) => ({ instruction: `do ${i} then more`, iteration: depth }))),
  });
  const data = join(dir, 'seq.json');
  const run = async (name: string, ids: number[], verdicts: string[]) => {
    writeFileSync(join(dir, `${name}.jsonl`), ids.map((i) => JSON.stringify({ id: i, output: `out ${i}` })).join('\n'));
    await scorePredictions({ bench: 'seqeval', dataFile: data, predictionsFile: join(dir, `${name}.jsonl`), outDir: join(dir, name), limit: ids.length });
    writeFileSync(join(dir, name, 'judge.jsonl'), verdicts.map((status, i) => JSON.stringify({ id: String(i), kind: 'follow', status, attempts: 1 })).join('\n') + '\n');
  };
  await run('IT', [0, 1, 2, 3], ['not-followed', 'followed', 'not-followed', 'malformed']);
  await run('SIT', [0, 1, 2], ['followed', 'followed', 'followed']);
  const c = await compareRuns(join(dir, 'IT'), join(dir, 'SIT'), { samples: 500 });
  t.same([c.paired, c.onlyInA, c.onlyInB], [3, 1, 0]);
  t.same(c.overall.map((m) => m.metric), ['followRate'], 'SeqEval has no accuracy');
  t.match(c.overall[0], { n: 3, a: 1 / 3, b: 1 });
  t.match(c.groups['depth-2'][0], { n: 1, a: 0, b: 1, diff: 1 });
});
