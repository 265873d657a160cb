// Hand-written SVG charts: a line chart (log x) and a bar chart, laid out as
// panels side by side in one file per scenario. Small on purpose: the bench
// should not pull in a charting library.

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

export interface LineChart {
  kind: 'line';
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  logX?: boolean;
}

export interface BarChart {
  kind: 'bar';
  title: string;
  yLabel: string;
  bars: Array<{ label: string; value: number }>;
}

export type Chart = LineChart | BarChart;

const W = 420;
const H = 300;
const M = { left: 64, right: 16, top: 36, bottom: 48 };
const COLORS: Record<string, string> = { pgfeed: '#1f77b4', raw: '#2ca02c', naive: '#d62728' };
const PALETTE = ['#1f77b4', '#2ca02c', '#d62728', '#9467bd', '#ff7f0e', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** Round axis maximum: 1, 2 or 5 times a power of ten. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function color(name: string, i: number): string {
  return COLORS[name] ?? PALETTE[i % PALETTE.length];
}

function frame(c: Chart, yMax: number): string {
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  let s = `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(c.title)}</text>`;
  s += `<rect x="${M.left}" y="${M.top}" width="${iw}" height="${ih}" fill="none" stroke="#999"/>`;
  for (let i = 0; i <= 4; i++) {
    const y = M.top + ih - (ih * i) / 4;
    s += `<line x1="${M.left}" x2="${M.left + iw}" y1="${y}" y2="${y}" stroke="#eee"/>`;
    s += `<text x="${M.left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${fmt((yMax * i) / 4)}</text>`;
  }
  s += `<text transform="translate(14 ${M.top + ih / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(c.yLabel)}</text>`;
  return s;
}

function line(c: LineChart): string {
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const xs = c.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = c.series.flatMap((s) => s.points.map((p) => p[1]));
  const yMax = niceMax(Math.max(0, ...ys));
  const tx = c.logX ? (v: number) => Math.log10(Math.max(v, 1e-9)) : (v: number) => v;
  const x0 = Math.min(...xs.map(tx));
  const x1 = Math.max(...xs.map(tx));
  const px = (v: number) => M.left + (x1 > x0 ? ((tx(v) - x0) / (x1 - x0)) * iw : iw / 2);
  const py = (v: number) => M.top + ih - (v / yMax) * ih;
  let s = frame(c, yMax);
  for (const x of [...new Set(xs)]) {
    s += `<text x="${px(x)}" y="${M.top + ih + 16}" text-anchor="middle" font-size="11">${fmt(x)}</text>`;
  }
  s += `<text x="${M.left + iw / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${esc(c.xLabel)}</text>`;
  c.series.forEach((ser, i) => {
    const col = color(ser.name, i);
    const pts = [...ser.points].sort((a, b) => a[0] - b[0]);
    if (pts.length > 1) s += `<polyline fill="none" stroke="${col}" stroke-width="2" points="${pts.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ')}"/>`;
    for (const p of pts) s += `<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${col}"><title>${esc(ser.name)}: ${fmt(p[1])}</title></circle>`;
    s += `<rect x="${M.left + 8}" y="${M.top + 8 + i * 16}" width="10" height="10" fill="${col}"/>`;
    s += `<text x="${M.left + 22}" y="${M.top + 17 + i * 16}" font-size="11">${esc(ser.name)}</text>`;
  });
  return s;
}

function bar(c: BarChart): string {
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const yMax = niceMax(Math.max(0, ...c.bars.map((b) => b.value)));
  let s = frame(c, yMax);
  const slot = iw / Math.max(1, c.bars.length);
  c.bars.forEach((b, i) => {
    const h = (b.value / yMax) * ih;
    const x = M.left + i * slot + slot * 0.2;
    s += `<rect x="${x.toFixed(1)}" y="${(M.top + ih - h).toFixed(1)}" width="${(slot * 0.6).toFixed(1)}" height="${h.toFixed(1)}" fill="${color(b.label, i)}"/>`;
    s += `<text x="${(x + slot * 0.3).toFixed(1)}" y="${(M.top + ih - h - 4).toFixed(1)}" text-anchor="middle" font-size="11">${fmt(b.value)}</text>`;
    s += `<text x="${(x + slot * 0.3).toFixed(1)}" y="${M.top + ih + 16}" text-anchor="middle" font-size="11">${esc(b.label)}</text>`;
  });
  return s;
}

/** One SVG document with the charts side by side. */
export function renderCharts(charts: Chart[], caption = ''): string {
  const width = W * charts.length;
  const height = H + (caption ? 20 : 0);
  let body = '';
  charts.forEach((c, i) => {
    body += `<g transform="translate(${i * W} 0)">${c.kind === 'line' ? line(c) : bar(c)}</g>`;
  });
  if (caption) body += `<text x="8" y="${H + 14}" font-size="11" fill="#555">${esc(caption)}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>${body}\n</svg>\n`;
}
