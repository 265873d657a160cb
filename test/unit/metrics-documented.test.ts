// Every metric the daemon exports is documented in docs/http.md, with its
// type and labels. The names come from a real registry, so a new metric
// without a table row fails here.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { createMetrics } from '../../src/metrics.js';

const doc = readFileSync(new URL('../../docs/http.md', import.meta.url), 'utf8');
/** The metric table of docs/http.md: name -> [type, labels, meaning]. */
const rows = new Map<string, string[]>();
for (const line of doc.split('\n')) {
  const m = /^\| `([a-z0-9_]+)` \|(.*)\|$/.exec(line);
  if (m) rows.set(m[1], m[2].split('|').map((c) => c.trim()));
}
const labelsOf = (cell: string) => [...cell.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).sort();

const { registry } = createMetrics();
const exported = registry.getMetricsAsArray();

t.ok(exported.length > 20, 'the registry holds the daemon metrics and the default ones');
for (const metric of exported) {
  const { name, type, labelNames } = metric as unknown as { name: string; type: string; labelNames: string[] };
  t.test(name, async (t) => {
    const row = rows.get(name);
    t.ok(row, `docs/http.md has a table row for ${name}`);
    if (!row) return;
    t.equal(row.length, 3, 'type, labels, meaning');
    t.equal(row[0], type, `documented as a ${type}`);
    t.same(labelsOf(row[1]), [...labelNames].sort(), 'with its labels');
    t.ok(row[2].length > 0, 'and a meaning');
  });
}

t.test('no documented metric is unknown to the registry', async (t) => {
  const names = new Set(exported.map((m) => (m as unknown as { name: string }).name));
  for (const [name, row] of rows) if (row.length === 3 && /^(gauge|counter|histogram|summary)$/.test(row[0])) t.ok(names.has(name), `${name} is exported`);
});
