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
