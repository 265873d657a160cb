// docs/openapi.yaml is a valid OpenAPI 3.1 document that describes what the
// daemon serves: every route, every parameter and every HTTP error code with
// its status. The routes, parameters and codes are read from the source, and
// the routes are also requested from a real daemon.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dereference, validate } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { STATUS } from '../../src/http/status.js';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';

const SPEC = fileURLToPath(new URL('../../docs/openapi.yaml', import.meta.url));
const source = (path: string) => readFileSync(new URL(`../../src/${path}`, import.meta.url), 'utf8');

interface Parameter {
  name: string;
  in: string;
}
interface Operation {
  parameters?: ({ $ref: string } | Parameter)[];
  responses: Record<string, unknown>;
}
const spec = parse(readFileSync(SPEC, 'utf8')) as {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { parameters: Record<string, Parameter>; responses: Record<string, unknown>; schemas: Record<string, any> };
};

/** Follows a local `$ref` in the spec. */
function deref<T>(node: unknown): T {
  const ref = (node as { $ref?: string })?.$ref;
  if (!ref) return node as T;
  return ref.slice(2).split('/').reduce((n: any, k) => n[k], spec) as T;
}

/** Every `code` enum under a response's schema, through its $refs. */
function codesIn(node: unknown, out = new Set<string>()): Set<string> {
  const n = deref<any>(node);
  if (!n || typeof n !== 'object') return out;
  if (Array.isArray(n.properties?.code?.enum)) for (const c of n.properties.code.enum) out.add(c);
  for (const v of Object.values(n)) codesIn(v, out);
  return out;
}

/** The routes createApp registers, from src/http/server.ts (the catch-alls excluded), with their methods. */
const methods = new Map<string, string[]>();
for (const m of source('http/server.ts').matchAll(/\.(get|post)\('([^']+)'/g)) if (m[2] !== '/*') methods.set(m[2], [...(methods.get(m[2]) ?? []), m[1]]);
const routes = [...methods.keys()];
/**
 * The codes HTTP responses carry: src/errors.ts lists them under "HTTP
 * request errors"; the rest (under "start-up errors") end the process instead.
 */
const errorsTs = source('errors.ts');
const httpSection = errorsTs.slice(errorsTs.indexOf('// HTTP request errors'), errorsTs.indexOf('// start-up errors'));
const httpCodes = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => new RegExp(`^\\s+${c}:`, 'm').test(httpSection));

t.test('a valid OpenAPI 3.1 document', async (t) => {
  t.match(spec.openapi, /^3\.1\./, 'OpenAPI 3.1');
  const result = await validate(SPEC);
  t.ok(result.valid, `@readme/openapi-parser accepts it${result.valid ? '' : `: ${JSON.stringify(result.errors)}`}`);
});

t.test('every route is documented, and nothing else', async (t) => {
  t.ok(routes.length >= 5, `the routes are read from server.ts (${routes.join(' ')})`);
  t.same(Object.keys(spec.paths).sort(), [...routes].sort(), 'the paths are the routes');
  for (const p of routes) t.same(Object.keys(spec.paths[p] ?? {}), methods.get(p), `${p}: ${methods.get(p)!.join(', ')}, the only method served`);
});

t.test('every parameter of /v1/events and /v1/changes, and only those', async (t) => {
  const params = source('http/params.ts');
  const allowed = (fn: string) => JSON.parse(new RegExp(`function ${fn}\\([^]*?parseQuery\\(query, (\\[[^\\]]*\\])`).exec(params)![1].replaceAll("'", '"')) as string[];
  const documented = (path: string, where: string) =>
    (spec.paths[path].get.parameters ?? []).map((p) => deref<Parameter>(p)).filter((p) => p.in === where).map((p) => p.name).sort();
  t.same(documented('/v1/events', 'query'), allowed('parseStreamParams').sort(), '/v1/events query parameters');
  t.same(documented('/v1/changes', 'query'), allowed('parsePollParams').sort(), '/v1/changes query parameters');
  t.same(documented('/v1/events', 'header'), ['Last-Event-ID'], '/v1/events reads Last-Event-ID');
  t.same(documented('/v1/changes', 'header'), [], '/v1/changes reads no header');
});

t.test('every HTTP error code, with its status', async (t) => {
  t.ok(httpCodes.length >= 15 && !httpCodes.includes('invalid_config'), `the HTTP codes are read from errors.ts (${httpCodes.length})`);
  const listed = (spec.components.schemas.ErrorCode.oneOf as { const: string; description: string }[]);
  t.same(listed.map((c) => c.const).sort(), [...httpCodes].sort(), 'ErrorCode lists exactly the HTTP codes');
  for (const c of listed) if (c.const in STATUS) t.match(c.description, new RegExp(`^${STATUS[c.const as ErrorCode].slice(0, 3)}:`), `${c.const} is documented with ${STATUS[c.const as ErrorCode]}`);
  // not_found and method_not_allowed answer paths and methods that are not operations.
  for (const code of httpCodes.filter((c) => c !== 'not_found' && c !== 'method_not_allowed')) {
    const status = STATUS[code].slice(0, 3);
    const where = Object.entries(spec.paths).filter(([, ops]) => Object.values(ops).some((op) => codesIn(op.responses[status]).has(code))).map(([p]) => p);
    t.ok(where.length > 0, `${code} is a ${status} response of ${where.join(', ') || 'no operation'}`);
  }
});

t.test('the daemon serves every documented path', async (t) => {
  const db = await testDatabase(t);
  const daemon = await startDaemon(t, db.url);
  // POST /v1/tickets is served only with authentication on: test/daemon/auth-streams.test.ts.
  for (const path of Object.keys(spec.paths).filter((p) => spec.paths[p].get)) {
    const r = await fetch(`${daemon.base}${path}${path.startsWith('/v1/') ? '?project=openapi' : ''}`);
    // /v1/events is a stream: the status is all this needs.
    await r.body?.cancel();
    t.equal(r.status, 200, `GET ${path}: 200`);
  }
  const r = await fetch(`${daemon.base}/v1/undocumented`);
  t.equal(r.status, 404, 'and a path it does not serve is 404');
  await r.body?.cancel();
});

t.test("the daemon's answers have the documented shapes", async (t) => {
  const api = (await dereference(SPEC)) as unknown as typeof spec;
  // Formats and contentSchema are annotations here; the JSON inside frames is checked on its own.
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  const check = (t: Test, schema: unknown, value: unknown, what: string) => {
    const ok = ajv.validate(schema as object, value);
    t.ok(ok, `${what} matches the spec${ok ? '' : `: ${ajv.errorsText()} in ${JSON.stringify(value).slice(0, 400)}`}`);
  };
  const json = (path: string, status: string) => (api.paths[path].get.responses[status] as any).content['application/json'].schema;
  const schemas = api.components.schemas;

  const db = await testDatabase(t);
  await db.pool.query(`CREATE TABLE orders (id serial PRIMARY KEY, tenant text NOT NULL); SELECT pgfeed.track('orders', 'tenant');
    INSERT INTO orders (tenant) VALUES ('shapes'); UPDATE orders SET tenant = 'shapes'; SELECT pgfeed.emit('shapes', 'hello', '{"n": 1}')`);
  const daemon = await startDaemon(t, db.url, { PGFEED_MAX_STREAMS: '1' });

  const page = await getJson(`${daemon.base}/v1/changes?project=shapes`);
  t.equal(page.body.events?.length, 3, 'a page of three events');
  check(t, json('/v1/changes', '200'), page.body, 'a page');
  check(t, json('/readyz', '200'), (await getJson(`${daemon.base}/readyz`)).body, '/readyz');
  check(t, json('/healthz', '200'), (await getJson(`${daemon.base}/healthz`)).body, '/healthz');
  check(t, json('/v1/changes', '400'), (await getJson(`${daemon.base}/v1/changes?project=shapes&limit=0`)).body, 'a 400 of /v1/changes');
  const unknown = await getJson(`${daemon.base}/v1/events?project=shapes&after=999999`);
  t.equal(unknown.body.error?.code, 'unknown_cursor');
  check(t, json('/v1/events', '400'), unknown.body, 'unknown_cursor with its seq');

  const stream = await connectSse(`${daemon.base}/v1/events?project=shapes&after=0`);
  t.teardown(() => stream.close());
  await stream.waitFor((c) => c.seqs.length === 3, 10_000, 'three events');
  for (const ev of stream.events) {
    check(t, schemas.DataEventFrame, { id: ev.id, event: ev.event, data: ev.data }, `the frame of ${ev.event}`);
    check(t, schemas.ChangeEvent, ev.json, `the data of ${ev.event}`);
  }
  // PGFEED_MAX_STREAMS=1 and one stream open: the next ones are refused for now.
  const refused = await connectSse(`${daemon.base}/v1/events?project=shapes`);
  await refused.waitFor((c) => c.closed, 10_000, 'the refusal to end');
  const control = refused.events.find((e) => e.event === 'pgfeed.unavailable');
  t.ok(control, 'an EventSource is asked to come back');
  check(t, schemas.ControlEventFrame, { event: control?.event, data: control?.data }, 'the control frame');
  check(t, schemas.UnavailableEvent, control?.json, 'the pgfeed.unavailable data');
  const busy = await getJson(`${daemon.base}/v1/changes?project=shapes`);
  t.equal(busy.status, 503);
  t.ok(busy.headers.get('retry-after'), 'with Retry-After');
  check(t, json('/v1/changes', '503'), busy.body, 'a 503');
});
