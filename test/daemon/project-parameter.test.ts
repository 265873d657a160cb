// The project is always a bound parameter, never SQL text: no query of
// src/db/ is built from it, and project names made of quotes and SQL reach
// only their own events, through the real daemon.
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import ts from 'typescript';
import { testDatabase } from '../harness/db.js';
import { deliveryOrder, emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { getJson } from '../helpers/sse-client.js';

const SRC_DB = new URL('../../src/db/', import.meta.url);

/** SQL text, told from messages and cache keys by its upper-case keywords. */
const SQL = /\b(SELECT|INSERT|UPDATE|DELETE|WHERE|FROM|JOIN|VALUES|SET|AND|OR)\b/;

/**
 * Every place in `file` where a value named like a project is spliced into
 * SQL text: a template literal's `${...}`, or `+` with a string literal.
 */
function projectSplices(file: string, text: string): string[] {
  const found: string[] = [];
  const names = (node: ts.Node) => /project/i.test(node.getText());
  const visit = (node: ts.Node) => {
    if (ts.isTemplateExpression(node) && SQL.test([node.head, ...node.templateSpans.map((s) => s.literal)].map((l) => l.text).join(' '))) {
      for (const span of node.templateSpans) if (names(span.expression)) found.push(span.expression.getText());
    }
    if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) {
      const sql = (n: ts.Node) => (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateExpression(n)) && SQL.test(n.getText());
      if ((sql(node.left) && names(node.right)) || (sql(node.right) && names(node.left))) found.push(node.getText());
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true));
  return found;
}

t.test('no query text in src/db is built from a project', async (t) => {
  const files = readdirSync(SRC_DB).filter((f) => f.endsWith('.ts'));
  t.ok(files.includes('read-batch.ts') && files.includes('position-of.ts'), `the project-scoped reads are among the ${files.length} files`);
  for (const f of files) {
    const found = projectSplices(f, readFileSync(new URL(f, SRC_DB), 'utf8'));
    t.same(found, [], `${f} splices no project into a string`);
  }
  // The check itself: a splice of the kind it must catch is caught.
  t.same(projectSplices('probe.ts', "q(`SELECT 1 WHERE project = '${filter.project}'`); q('WHERE x = ' + project); msg(`no project ${project}`);"), ['filter.project', "'WHERE x = ' + project"]);
});

t.test('project names made of quotes and SQL reach only their own events', async (t) => {
  const db = await testDatabase(t);
  const hostile = [
    "acme' OR '1'='1",
    "acme') OR true --",
    "'; DELETE FROM pgfeed.change_log; --",
    'acme%',
    'acme_',
    '"acme"',
    'acme\\',
    '$4',
    '*',
    'acme; SELECT pg_sleep(10)',
  ];
  const projects = ['acme', ...hostile];
  for (const [i, p] of projects.entries()) await emit(db.pool, p, 'e', i + 1);
  const total = (await db.pool.query('SELECT count(*)::int AS n FROM pgfeed.change_log')).rows[0].n;
  const daemon = await startDaemon(t, db.url);
  for (const p of projects) {
    const want = await deliveryOrder(db.pool, p);
    const page = await getJson(`${daemon.base}/v1/changes?project=${encodeURIComponent(p)}&after=0`);
    t.equal(page.status, 200, `${JSON.stringify(p)} is a valid project`);
    t.same(page.body.events.map((e: { seq: string }) => Number(e.seq)), want, `${JSON.stringify(p)}: its ${want.length} events, in order`);
    t.ok(page.body.events.every((e: { project: string }) => e.project === p), 'and no other project\'s');
    // A resume looks the cursor up by seq and project: another project's seq is unknown to it.
    const foreign = await deliveryOrder(db.pool, p === 'acme' ? 'acme_' : 'acme');
    const lookup = await getJson(`${daemon.base}/v1/changes?project=${encodeURIComponent(p)}&after=${foreign[0]}`);
    t.equal(lookup.body.error?.code, 'unknown_cursor', 'a seq of another project is unknown to it');
  }
  t.equal((await db.pool.query('SELECT count(*)::int AS n FROM pgfeed.change_log')).rows[0].n, total, 'every row is still there');
});
