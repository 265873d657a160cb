// docs/alerts.yaml is a Prometheus rule file that promtool accepts, and each
// alert fires on the series it is meant for and stays silent on the others
// (the cases are in alerts.promtool.yaml). Needs promtool, from Debian's
// `prometheus` package; the shape checks run without it.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse, stringify } from 'yaml';

const RULES = fileURLToPath(new URL('../../docs/alerts.yaml', import.meta.url));
const CASES = fileURLToPath(new URL('./alerts.promtool.yaml', import.meta.url));

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const file = parse(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };

t.test('the rule-file shape', async (t) => {
  t.ok(Array.isArray(file.groups) && file.groups.length > 0, 'groups is a non-empty list');
  for (const g of file.groups) {
    t.type(g.name, 'string', 'each group is named');
    t.ok(Array.isArray(g.rules) && g.rules.length > 0, `${g.name} has rules`);
    for (const r of g.rules) {
      t.type(r.alert, 'string', 'each rule is an alert');
      t.type(r.expr, 'string', `${r.alert} has an expression`);
      t.match(r.labels?.severity, /^(critical|warning)$/, `${r.alert} has a severity`);
      t.ok(r.annotations?.summary && r.annotations.description, `${r.alert} has a summary and a description`);
      if (r.for !== undefined) t.match(r.for, /^\d+[smh]$/, `${r.alert}: for is a duration`);
    }
  }
  const names = file.groups.flatMap((g) => g.rules.map((r) => r.alert));
  t.same(names.filter((n, i) => names.indexOf(n) !== i), [], 'alert names are unique');
});

const promtool = spawnSync('promtool', ['--version']).status === 0;
const noPromtool = promtool ? false : 'promtool is not installed (Debian package `prometheus`): rules not checked by promtool';

t.test('promtool check rules', { skip: noPromtool }, async (t) => {
  const out = execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  t.match(out, /SUCCESS: \d+ rules found/);
});

t.test('each alert fires when it should, and only then', { skip: noPromtool }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgfeed-alerts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // promtool compares annotations too; they are prose, so the cases check labels only.
  const bare = { groups: file.groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _a, ...r }) => r) })) };
  writeFileSync(join(dir, 'rules.yaml'), stringify(bare));
  const cases = parse(readFileSync(CASES, 'utf8'));
  cases.rule_files = [join(dir, 'rules.yaml')];
  writeFileSync(join(dir, 'cases.yaml'), stringify(cases));
  const tested = new Set<string>((cases.tests as { alert_rule_test: { alertname: string }[] }[]).flatMap((c) => c.alert_rule_test.map((a) => a.alertname)));
  t.same([...tested].sort(), file.groups.flatMap((g) => g.rules.map((r) => r.alert!)).sort(), 'every alert has a case');
  const run = spawnSync('promtool', ['test', 'rules', join(dir, 'cases.yaml')], { encoding: 'utf8' });
  t.equal(run.status, 0, `promtool test rules passes\n${run.stdout}${run.stderr}`);
});
