// Reads counters from a server's Prometheus /metrics text.

/** Sum of every sample of `name` (all label sets). */
export function sumMetric(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const next = line.charAt(name.length);
    if (next !== ' ' && next !== '{') continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) total += v;
  }
  return total;
}

export async function scrapeMetric(baseUrl: string, name: string): Promise<number> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  return sumMetric(await res.text(), name);
}

/** Samples of `name` keyed by the value of `label`, e.g. subscribers by state. */
export function metricByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const m = re.exec(line);
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (m && Number.isFinite(v)) out[m[1]] = (out[m[1]] ?? 0) + v;
  }
  return out;
}

export async function scrapeText(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

/** One label value's samples of a Prometheus histogram: cumulative bucket counts by upper bound. */
export interface ScrapedHistogram {
  les: number[];
  counts: number[];
  sum: number;
  count: number;
}

/** Every label value's histogram of `name` (e.g. pgfeed_delivery_step_seconds by step). */
export function histogramsByLabel(text: string, name: string, label: string): Map<string, ScrapedHistogram> {
  const out = new Map<string, ScrapedHistogram>();
  const labelRe = new RegExp(`${label}="([^"]*)"`);
  const get = (v: string) => {
    let h = out.get(v);
    if (!h) out.set(v, (h = { les: [], counts: [], sum: 0, count: 0 }));
    return h;
  };
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = labelRe.exec(line);
    if (!m) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    const h = get(m[1]);
    if (line.startsWith(`${name}_bucket{`)) {
      const le = /le="([^"]*)"/.exec(line)![1];
      h.les.push(le === '+Inf' ? Infinity : Number(le));
      h.counts.push(v);
    } else if (line.startsWith(`${name}_sum{`)) h.sum = v;
    else if (line.startsWith(`${name}_count{`)) h.count = v;
  }
  return out;
}

/** What was observed between two scrapes of the same histogram. */
export function histogramDelta(after: ScrapedHistogram, before: ScrapedHistogram | undefined): ScrapedHistogram {
  if (!before) return after;
  return { les: after.les, counts: after.counts.map((c, i) => c - (before.counts[i] ?? 0)), sum: after.sum - before.sum, count: after.count - before.count };
}

/** The q-quantile (0..1), interpolated linearly inside its bucket as Prometheus's histogram_quantile does. */
export function histogramQuantile(h: ScrapedHistogram, q: number): number {
  if (h.count === 0) return 0;
  const rank = q * h.count;
  for (let i = 0; i < h.les.length; i++) {
    if (h.counts[i] < rank) continue;
    const lo = i === 0 ? 0 : h.les[i - 1];
    const below = i === 0 ? 0 : h.counts[i - 1];
    if (!Number.isFinite(h.les[i])) return lo;
    return lo + ((h.les[i] - lo) * (rank - below)) / Math.max(1, h.counts[i] - below);
  }
  return h.les[h.les.length - 2] ?? 0;
}
