/**
 * Aggregating item scores: per group (language, chain depth) and overall, plus the bench's named
 * macro-averages over groups (XQuAD base/trans, MGSM all/non-en), each listing which member
 * groups were missing so a partial run cannot pass for a full one.
 */
import { ItemScore } from './bench';

export interface Metrics {
  n: number;
  /** outputs that are empty or only whitespace */
  empty: number;
  /** correct / items with a correctness score; null when none has one */
  accuracy: number | null;
  /** followed / items with a follow score */
  followRate: number | null;
  /** correct and followed / items with both (XQuAD's accuracy-with-follow) */
  correctAndFollowedRate: number | null;
}

export interface Average {
  members: string[];
  missing: string[];
  accuracy: number | null;
  followRate: number | null;
  correctAndFollowedRate: number | null;
}

export interface EvalSummary {
  bench: string;
  dataFile: string;
  overall: Metrics;
  /** empty when the bench has a single unnamed group */
  groups: Record<string, Metrics>;
  averages: Record<string, Average>;
}

export interface ScoredRow {
  group: string;
  output: string;
  score: ItemScore;
}

function rate(rows: ScoredRow[], has: (s: ItemScore) => boolean, hit: (s: ItemScore) => boolean): number | null {
  const scored = rows.filter((r) => has(r.score));
  return scored.length === 0 ? null : scored.filter((r) => hit(r.score)).length / scored.length;
}

export function metricsOf(rows: ScoredRow[]): Metrics {
  return {
    n: rows.length,
    empty: rows.filter((r) => r.output.trim() === '').length,
    accuracy: rate(rows, (s) => s.correct !== null, (s) => s.correct === true),
    followRate: rate(rows, (s) => s.followed !== null, (s) => s.followed === true),
    correctAndFollowedRate: rate(rows, (s) => s.correct !== null && s.followed !== null, (s) => s.correct === true && s.followed === true),
  };
}

function mean(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0) / present.length;
}

export function summarize(bench: string, dataFile: string, rows: ScoredRow[], averages: Record<string, readonly string[]> = {}): EvalSummary {
  const byGroup = new Map<string, ScoredRow[]>();
  for (const row of rows) {
    if (row.group === '') continue;
    const list = byGroup.get(row.group);
    if (list) list.push(row);
    else byGroup.set(row.group, [row]);
  }
  // groups named by the averages come in their order (the paper's language order), others after, sorted
  const listed = [...new Set(Object.values(averages).flat())];
  const rank = (g: string) => (listed.includes(g) ? listed.indexOf(g) : listed.length);
  const names = [...byGroup.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b, 'en', { numeric: true }));
  const groups: Record<string, Metrics> = {};
  for (const name of names) groups[name] = metricsOf(byGroup.get(name)!);
  const avg: Record<string, Average> = {};
  for (const [name, members] of Object.entries(averages)) {
    const present = members.filter((m) => groups[m]);
    if (present.length === 0) continue;
    const pick = (k: 'accuracy' | 'followRate' | 'correctAndFollowedRate') => mean(present.map((m) => groups[m][k]));
    avg[name] = {
      members: present,
      missing: members.filter((m) => !groups[m]),
      accuracy: pick('accuracy'),
      followRate: pick('followRate'),
      correctAndFollowedRate: pick('correctAndFollowedRate'),
    };
  }
  return { bench, dataFile, overall: metricsOf(rows), groups, averages: avg };
}

const pct = (v: number | null) => (v === null ? '-' : (100 * v).toFixed(1));

/** A plain-text table for the terminal. */
export function formatSummary(summary: EvalSummary): string {
  const lines = [`${summary.bench} on ${summary.dataFile}`, 'group          n  empty  accuracy  follow  acc+follow'];
  const row = (name: string, m: Metrics) =>
    `${name.padEnd(10)} ${String(m.n).padStart(5)} ${String(m.empty).padStart(6)} ${pct(m.accuracy).padStart(9)} ${pct(m.followRate).padStart(7)} ${pct(m.correctAndFollowedRate).padStart(11)}`;
  for (const [name, m] of Object.entries(summary.groups)) lines.push(row(name, m));
  lines.push(row('overall', summary.overall));
  for (const [name, a] of Object.entries(summary.averages)) {
    const missing = a.missing.length ? ` (missing: ${a.missing.join(', ')})` : '';
    lines.push(`avg ${name}: accuracy ${pct(a.accuracy)}, follow ${pct(a.followRate)}, acc+follow ${pct(a.correctAndFollowedRate)} over ${a.members.join(', ')}${missing}`);
  }
  return lines.join('\n');
}
