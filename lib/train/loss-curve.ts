/** The loss curve as a small self-contained SVG (no plotting dependency): train loss and, if any, dev loss. */
export interface CurvePoint {
  step: number;
  value: number;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

export function lossCurveSvg(series: Array<{ name: string; color: string; points: CurvePoint[] }>, title: string): string {
  const width = 640;
  const height = 360;
  const pad = { left: 56, right: 16, top: 32, bottom: 40 };
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.value));
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const minV = Math.min(...all.map((p) => p.value), Infinity);
  const maxV = Math.max(...all.map((p) => p.value), -Infinity);
  const lo = Number.isFinite(minV) ? minV : 0;
  const hi = Number.isFinite(maxV) && maxV > lo ? maxV : lo + 1;
  const x = (step: number) => pad.left + ((width - pad.left - pad.right) * step) / maxStep;
  const y = (v: number) => pad.top + ((height - pad.top - pad.bottom) * (hi - v)) / (hi - lo);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => lo + f * (hi - lo));
  const lines = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escape(title)}</text>`,
    `<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="black"/>`,
    `<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="black"/>`,
    ...ticks.map(
      (v) =>
        `<text x="${pad.left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>` +
        `<line x1="${pad.left}" y1="${y(v)}" x2="${width - pad.right}" y2="${y(v)}" stroke="#eee"/>`,
    ),
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle">optimizer step (of ${maxStep})</text>`,
  ];
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.value));
    if (pts.length) {
      lines.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts.map((p) => `${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ')}"/>`,
      );
    }
    lines.push(`<text x="${width - pad.right - 4}" y="${pad.top + 14 * (i + 1)}" text-anchor="end" fill="${s.color}">${escape(s.name)}</text>`);
  });
  lines.push('</svg>');
  return lines.join('\n');
}
