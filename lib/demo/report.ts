/** The demo's report: its JSON shape, the printed table and the bar chart (self-contained SVG). */

export interface ModelSummary {
  /** tokens the model was trained on (prompt and response tokens of the packed batches) */
  trainTokens: number;
  finalLoss: number;
}

export interface Rates {
  exactMatch: number;
  /** every requested intermediate result in order, with any label or none (lib/demo/score.ts) */
  followingAnyFormat: number;
  /** the strict form: the labelled steps SIT trains on */
  followingRate: number;
}

export interface SplitReport {
  name: string;
  n: number;
  it: Rates;
  sit: Rates;
  /** SIT − IT, with paired-bootstrap 95% intervals */
  diff: Rates & { ci95: Record<keyof Rates, [number, number]> };
}

export interface DemoReport {
  version: string;
  command: string;
  seed: number;
  device: string;
  preset: string;
  params: number;
  tokenBudget: number;
  wallSeconds: number;
  models: { it: ModelSummary; sit: ModelSummary };
  splits: SplitReport[];
}

const pct = (v: number) => (100 * v).toFixed(1);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${pct(v)}`;
const interval = ([lo, hi]: [number, number]) => `[${signed(lo)}, ${signed(hi)}]`;

/** The metrics in table order, with their column heads. */
const METRICS: Array<[keyof Rates, string]> = [
  ['exactMatch', 'EM'],
  ['followingAnyFormat', 'follow'],
  ['followingRate', 'strict'],
];

/**
 * The table: one row per split; per metric (exact match, format-free following, strict following)
 * both models and SIT − IT with its interval.
 */
export function formatTable(report: Pick<DemoReport, 'splits'>): string {
  const head = ['split', 'n', ...METRICS.flatMap(([, h]) => [`${h} IT`, `${h} SIT`, `${h} SIT-IT [95% CI]`])];
  const rows = report.splits.map((s) => [
    s.name,
    String(s.n),
    ...METRICS.flatMap(([key]) => [pct(s.it[key]), pct(s.sit[key]), `${signed(s.diff[key])} ${interval(s.diff.ci95[key])}`]),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const COLORS = { it: '#9aa5b1', sit: '#1f77b4' };

/** Grouped bars per split and metric (METRICS): IT (grey) next to SIT (blue), in %. */
export function reportSvg(report: DemoReport): string {
  const bar = 28;
  const metricWidth = 2 * bar + 16;
  const groupWidth = METRICS.length * metricWidth + 24;
  const pad = { left: 48, right: 16, top: 56, bottom: 64 };
  const plotH = 240;
  const width = pad.left + pad.right + groupWidth * report.splits.length;
  const height = pad.top + plotH + pad.bottom;
  const y = (v: number) => pad.top + plotH * (1 - v);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escape(`seqtune demo: IT vs SIT (preset ${report.preset}, ${report.tokenBudget} tokens each, seed ${report.seed})`)}</text>`,
    `<rect x="${pad.left}" y="30" width="10" height="10" fill="${COLORS.it}"/><text x="${pad.left + 14}" y="39">IT</text>`,
    `<rect x="${pad.left + 44}" y="30" width="10" height="10" fill="${COLORS.sit}"/><text x="${pad.left + 58}" y="39">SIT</text>`,
  ];
  out.push(`<text x="12" y="${pad.top + plotH / 2}" transform="rotate(-90 12 ${pad.top + plotH / 2})" text-anchor="middle">% of items</text>`);
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(`<line x1="${pad.left}" y1="${y(v)}" x2="${width - pad.right}" y2="${y(v)}" stroke="#eee"/>`);
    out.push(`<text x="${pad.left - 6}" y="${y(v) + 4}" text-anchor="end">${pct(v)}</text>`);
  }
  report.splits.forEach((s, g) => {
    const x0 = pad.left + g * groupWidth + 12;
    const middle = x0 + (METRICS.length * metricWidth - 16) / 2;
    METRICS.forEach(([key, label], m) => {
      const xm = x0 + m * metricWidth;
      (['it', 'sit'] as const).forEach((model, k) => {
        const v = s[model][key];
        const x = xm + k * bar;
        out.push(`<rect x="${x}" y="${y(v)}" width="${bar - 2}" height="${plotH * v}" fill="${COLORS[model]}"><title>${model.toUpperCase()} ${label}: ${pct(v)}%</title></rect>`);
        out.push(`<text x="${x + bar / 2 - 1}" y="${y(v) - 3}" text-anchor="middle" font-size="10">${pct(v)}</text>`);
      });
      out.push(`<text x="${xm + bar}" y="${pad.top + plotH + 14}" text-anchor="middle" font-size="10">${label}</text>`);
    });
    out.push(`<text x="${middle}" y="${pad.top + plotH + 32}" text-anchor="middle">${escape(s.name)} (n=${s.n})</text>`);
    out.push(`<text x="${middle}" y="${pad.top + plotH + 48}" text-anchor="middle" font-size="10">EM ${signed(s.diff.exactMatch)} ${interval(s.diff.ci95.exactMatch)}</text>`);
  });
  out.push(`<line x1="${pad.left}" y1="${y(0)}" x2="${width - pad.right}" y2="${y(0)}" stroke="black"/>`);
  out.push('</svg>');
  return out.join('\n');
}
