// Every metric the alert rules (docs/alerts.yaml) and the Grafana dashboard
// (docs/grafana-dashboard.json) use is exported by the daemon's registry,
// with the labels they select on, so a renamed metric or label cannot leave
// an alert that never fires or a panel that stays empty.
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { createMetrics } from '../../src/metrics.js';

const { registry } = createMetrics();
/** Exported name -> its labels. A histogram is queried through its series. */
const exported = new Map<string, string[]>();
/** Histogram names: never in a query themselves, only their _bucket, _sum and _count series. */
const histograms = new Set<string>();
for (const m of registry.getMetricsAsArray() as unknown as { name: string; type: string; labelNames: string[] }[]) {
  exported.set(m.name, [...m.labelNames]);
  if (m.type === 'histogram') {
    histograms.add(m.name);
    exported.set(`${m.name}_bucket`, [...m.labelNames, 'le']);
    for (const s of ['_sum', '_count']) exported.set(m.name + s, [...m.labelNames]);
  }
}
/** Added to every series by Prometheus when it scrapes. */
const TARGET_LABELS = ['instance', 'job'];

/** The metric names in a PromQL expression, each with the label names its selector uses. */
function selectors(expr: string): { name: string; labels: string[] }[] {
  const out: { name: string; labels: string[] }[] = [];
  for (const m of expr.matchAll(/\b((?:pgfeed|process|nodejs)_[a-zA-Z0-9_]*|[a-zA-Z_][a-zA-Z0-9_]*(?=\s*\{))(\{[^}]*\})?/g)) {
    if (m[1].startsWith('__')) continue;
    out.push({ name: m[1], labels: [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]) });
  }
  return out;
}

function checkExpr(t: Test, where: string, expr: string): void {
  const used = selectors(expr);
  t.ok(used.length > 0, `${where} uses at least one metric`);
  for (const { name, labels } of used) {
    const known = exported.get(name);
    t.ok(known, `${where}: ${name} is exported`);
    for (const l of labels) t.ok(known?.includes(l) || TARGET_LABELS.includes(l), `${where}: ${name} has the label ${l}`);
  }
}

t.test('the selector parser sees names and labels', async (t) => {
  t.same(selectors('sum by (code) (rate(pgfeed_requests_rejected_total{instance=~"$instance",code="over_capacity"}[5m])) > 0'), [
    { name: 'pgfeed_requests_rejected_total', labels: ['instance', 'code'] },
  ]);
  t.same(selectors('label_values(pgfeed_listen_connected, instance)'), [{ name: 'pgfeed_listen_connected', labels: [] }]);
  t.same(selectors('rate(nodejs_gc_duration_seconds_sum[$__rate_interval]) and up{job="x"}'), [
    { name: 'nodejs_gc_duration_seconds_sum', labels: [] },
    { name: 'up', labels: ['job'] },
  ]);
});

t.test('docs/alerts.yaml', async (t) => {
  const file = parse(readFileSync(new URL('../../docs/alerts.yaml', import.meta.url), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const rules = file.groups.flatMap((g) => g.rules);
  t.ok(rules.length >= 6, 'the rules are read');
  for (const r of rules) checkExpr(t, r.alert, r.expr);
});

interface Panel {
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

t.test('docs/grafana-dashboard.json', async (t) => {
  const dash = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as {
    panels: Panel[];
    templating: { list: { name: string; definition?: string }[] };
  };
  const panels = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.targets);
  t.ok(panels.length >= 20, `the panels are read (${panels.length})`);
  for (const p of panels) for (const [i, target] of p.targets!.entries()) checkExpr(t, `panel "${p.title}" query ${i + 1}`, target.expr);
  for (const v of dash.templating.list) if (v.definition) checkExpr(t, `variable ${v.name}`, v.definition);
  const daemonMetrics = [...exported.keys()].filter((n) => n.startsWith('pgfeed_') && !histograms.has(n));
  const shown = new Set(panels.flatMap((p) => p.targets!.flatMap((q) => selectors(q.expr).map((s) => s.name))));
  t.same(daemonMetrics.filter((n) => !shown.has(n)), [], 'every pgfeed_ metric has a panel');
});
