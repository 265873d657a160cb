// Authentication with JWT: every refusal with its code and status, the
// grant's projects and types, the places a token may come from, the
// operator token, and no token or ticket in the logs.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { waitUntil } from '../helpers/wait.js';
import { AUTH_ENV, bearer, mintTicket, token, unsignedToken } from '../helpers/tokens.js';

t.test('every bad token is refused with its code, on both endpoints', async (t) => {
  const db = await testDatabase(t);
  const daemon = await startDaemon(t, db.url, AUTH_ENV);
  await db.pool.query(`SELECT pgfeed.revoke('mallory', 'left the company')`);
  const now = Math.floor(Date.now() / 1000);
  const cases: [string, Record<string, string>, string, number][] = [
    ['no token', {}, 'missing_token', 401],
    ['expired', bearer(await token({ expiresInS: -10 })), 'token_expired', 401],
    ['not yet valid', bearer(await token({ notBeforeS: 600 })), 'token_not_yet_valid', 401],
    ['wrong signature', bearer(await token({ secret: 'another-secret-0123456789abcdefghijkl' })), 'invalid_token', 401],
    ['alg none', bearer(unsignedToken({ sub: 'alice', iss: 'https://issuer.test', aud: 'pgfeed-test', exp: now + 600, pgfeed: { projects: ['*'] } })), 'invalid_token', 401],
    ['wrong audience', bearer(await token({ audience: 'someone-else' })), 'invalid_token', 401],
    ['wrong issuer', bearer(await token({ issuer: 'https://evil.test' })), 'invalid_token', 401],
    ['revoked subject', bearer(await token({ sub: 'mallory', issuedAtS: -5 })), 'token_revoked', 401],
    ['no pgfeed claim', bearer(await token({ claim: 'all' })), 'invalid_token', 401],
    ['garbage', bearer('not.a.jwt'), 'invalid_token', 401],
    ['not Bearer', { Authorization: 'Basic YWxpY2U6cHc=' }, 'invalid_token', 401],
    ['another project', bearer(await token({ projects: ['beta', 'acme-*'] })), 'project_forbidden', 403],
    ['types not allowed', bearer(await token({ types: ['users.*'] })), 'types_forbidden', 403],
  ];
  for (const [name, headers, code, status] of cases) {
    for (const path of ['/v1/events?project=acme&types=orders.*', '/v1/changes?project=acme&types=orders.*']) {
      const r = await getJson(`${daemon.base}${path}`, { Accept: 'text/event-stream', ...headers });
      t.equal(r.status, status, `${name} on ${path.slice(0, 10)}: ${status}`);
      t.equal(r.body?.error?.code, code, `${name}: ${code}`);
      if (status === 401) t.match(r.headers.get('www-authenticate'), /^Bearer realm="pgfeed"/, `${name}: WWW-Authenticate`);
    }
  }
  const ok = await getJson(`${daemon.base}/v1/changes?project=acme-web&types=orders.*`, bearer(await token({ projects: ['beta', 'acme-*'] })));
  t.equal(ok.status, 200, 'a prefix glob admits a project it matches');
  const fresh = await getJson(`${daemon.base}/v1/changes?project=acme`, bearer(await token({ sub: 'mallory', issuedAtS: 2 })));
  t.equal(fresh.status, 200, "a token issued after the subject's revocation is admitted");
});

t.test("a stream carries only the types its token allows, narrowed from what it asked", async (t) => {
  const db = await testDatabase(t);
  const daemon = await startDaemon(t, db.url, AUTH_ENV);
  const tok = await token({ projects: ['acme'], types: ['orders.*', 'pr_opened'] });
  const all = await connectSse(`${daemon.base}/v1/events?project=acme&after=0`, bearer(tok));
  const some = await connectSse(`${daemon.base}/v1/events?project=acme&after=0&types=*`, bearer(tok));
  t.teardown(() => (all.close(), some.close()));
  t.equal(all.status, 200);
  await emit(db.pool, 'acme', 'users.insert');
  await emit(db.pool, 'acme', 'orders.insert');
  await emit(db.pool, 'acme', 'pr_closed');
  await emit(db.pool, 'beta', 'orders.insert');
  const [marker] = await emit(db.pool, 'acme', 'pr_opened');
  for (const s of [all, some]) {
    await s.waitFor((c) => c.seqs.includes(marker), 10_000, 'the marker');
    t.same(s.events.filter((e) => e.id !== null).map((e) => e.event), ['orders.insert', 'pr_opened'], 'only the allowed types, up to the marker');
  }
  const page = await getJson(`${daemon.base}/v1/changes?project=acme`, bearer(tok));
  t.same(page.body.events.map((e: any) => e.type), ['orders.insert', 'pr_opened'], 'a poll likewise');
});

t.test('a token from a cookie or access_token, only where enabled; none in the logs', async (t) => {
  const db = await testDatabase(t);
  const tok = await token({ projects: ['acme'] });
  const closed = await startDaemon(t, db.url, AUTH_ENV);
  t.equal((await getJson(`${closed.base}/v1/changes?project=acme&access_token=${tok}`)).body.error?.code, 'unknown_parameter', 'access_token is refused unless enabled');
  t.equal((await getJson(`${closed.base}/v1/changes?project=acme`, { Cookie: `pgfeed_token=${tok}` })).body.error?.code, 'missing_token', 'a cookie is not read unless named');

  const open = await startDaemon(t, db.url, { ...AUTH_ENV, PGFEED_AUTH_COOKIE: 'pgfeed_token', PGFEED_ALLOW_QUERY_TOKEN: 'true', PGFEED_LOG_LEVEL: 'debug' });
  t.equal((await getJson(`${open.base}/v1/changes?project=acme&access_token=${tok}`)).status, 200, 'access_token when enabled');
  t.equal((await getJson(`${open.base}/v1/changes?project=acme`, { Cookie: `theme=dark; pgfeed_token=${tok}` })).status, 200, 'the named cookie');
  const refused = await getJson(`${open.base}/v1/changes?project=beta&access_token=${tok}`);
  t.equal(refused.body.error?.code, 'project_forbidden');
  const minted = await mintTicket(open.base, tok, { project: 'acme' });
  await getJson(`${open.base}/v1/events?project=beta&ticket=${minted.body.ticket}`);
  await getJson(`${open.base}/v1/events?project=acme&ticket=${minted.body.ticket}&after=x`, { Authorization: `Bearer ${tok}` });
  await waitUntil(() => open.logs.filter((l) => l.msg === 'request refused').length >= 3, 5_000, 'the refusals logged');
  const text = open.logs.map((l) => JSON.stringify(l)).join('\n');
  t.notOk(text.includes(tok), 'the token appears in no log line');
  t.notOk(text.includes(minted.body.ticket), 'the ticket appears in no log line');
  t.match(text, /access_token=\[Redacted\]/, 'the query is logged, its access_token redacted');
  t.match(text, /ticket=\[Redacted\]/, 'and its ticket');
});

t.test('the operator token guards /metrics and the /readyz detail', async (t) => {
  const db = await testDatabase(t);
  const op = 'operator-token-0123456789abcdefghijklmn';
  const daemon = await startDaemon(t, db.url, { ...AUTH_ENV, PGFEED_OPERATOR_TOKEN: op });
  const anon = await getJson(`${daemon.base}/metrics`);
  t.equal(anon.status, 401, '/metrics without it: 401');
  t.equal(anon.body.error?.code, 'missing_token');
  t.equal((await getJson(`${daemon.base}/metrics`, bearer('wrong-token'))).body.error?.code, 'invalid_token', 'a wrong one: invalid_token');
  const r = await fetch(`${daemon.base}/metrics`, { headers: bearer(op) });
  t.equal(r.status, 200, 'with it: 200');
  t.match(await r.text(), /pgfeed_requests_rejected_total/, 'the metrics');
  const brief = await getJson(`${daemon.base}/readyz`);
  t.same(brief.body, { ready: true }, '/readyz without it: the status only');
  const full = await getJson(`${daemon.base}/readyz`, bearer(op));
  t.ok(full.body.listen && full.body.database, '/readyz with it: the detail');
  t.equal((await getJson(`${daemon.base}/healthz`)).status, 200, '/healthz stays open');
  // The inspector's operator view (served: the daemon listens on loopback) is the operator's too.
  t.equal((await getJson(`${daemon.base}/ui/api/streams`)).body.error?.code, 'missing_token', '/ui/api/streams without it: 401 missing_token');
  const view = await getJson(`${daemon.base}/ui/api/streams`, bearer(op));
  t.equal(view.status, 200, '/ui/api/streams with it: 200');
  t.ok(Array.isArray(view.body.streams), 'and the streams by project');
});

t.test('public keys: RS256 from a PEM file, ES256 from a JWKS, rotation without a restart, no algorithm confusion', async (t) => {
  const db = await testDatabase(t);
  const dir = mkdtempSync(join(tmpdir(), 'pgfeed-keys-'));
  const rsa1 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsa2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pemOf = (k: typeof rsa1) => k.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const pemFile = join(dir, 'jwt.pub.pem');
  writeFileSync(pemFile, pemOf(rsa1));
  const signed = (alg: string, key: Parameters<SignJWT['sign']>[0], kid?: string) =>
    new SignJWT({ pgfeed: { projects: ['acme'] } }).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setSubject('svc').setIssuedAt().setExpirationTime('1h').sign(key);
  const daemon = await startDaemon(t, db.url, { PGFEED_JWT_PUBLIC_KEY_FILE: pemFile });
  const poll = (tok: string) => getJson(`${daemon.base}/v1/changes?project=acme`, bearer(tok));
  t.equal((await poll(await signed('RS256', rsa1.privateKey))).status, 200, 'RS256 with the key in the file');
  t.equal((await poll(await signed('RS256', rsa2.privateKey))).body.error?.code, 'invalid_token', 'another key: refused');
  // HS256 "signed" with the public key's PEM: the classic confusion.
  const confused = await signed('HS256', new TextEncoder().encode(pemOf(rsa1)));
  t.equal((await poll(confused)).body.error?.code, 'invalid_token', 'HS256 keyed with the public key: refused');
  // Rotation: the file is replaced by a rename, as rotation tools do.
  writeFileSync(`${pemFile}.new`, pemOf(rsa2));
  renameSync(`${pemFile}.new`, pemFile);
  await waitUntil(async () => (await poll(await signed('RS256', rsa2.privateKey))).status === 200, 10_000, 'the new key to be read');
  t.pass('a replaced key file is read without a restart');
  writeFileSync(pemFile, 'not a key');
  await waitUntil(() => daemon.logs.some((l) => l.msg === 'token keys not reloaded; the previous keys stay in use'), 10_000, 'the failed reload');
  t.equal((await poll(await signed('RS256', rsa2.privateKey))).status, 200, 'a broken file keeps the previous key');

  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  const jwks = await startDaemon(t, db.url, { PGFEED_JWKS_FILE: jwksFile });
  const viaJwks = (tok: string) => getJson(`${jwks.base}/v1/changes?project=acme`, bearer(tok));
  t.equal((await viaJwks(await signed('ES256', ec.privateKey, 'k1'))).status, 200, 'ES256 by kid from the JWKS');
  const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  t.equal((await viaJwks(await signed('ES256', ec2.privateKey, 'k2'))).body.error?.code, 'invalid_token', 'an unknown kid: refused');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(ec2.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' }] }));
  jwks.proc.kill('SIGHUP');
  await waitUntil(async () => (await viaJwks(await signed('ES256', ec2.privateKey, 'k2'))).status === 200, 10_000, 'the rotated key set');
  t.pass('a rotated key set is read on SIGHUP or change');
});

t.test('start-up refuses auth settings that cannot be meant', async (t) => {
  const db = await testDatabase(t);
  for (const [env, key] of [
    [{ PGFEED_JWT_SECRET: 'short' }, 'PGFEED_JWT_SECRET'],
    [{ PGFEED_JWT_ISSUER: 'https://issuer.test' }, 'PGFEED_JWT_ISSUER'],
    [{ ...AUTH_ENV, PGFEED_JWKS_FILE: '/nonexistent.json' }, 'PGFEED_JWKS_FILE'],
    [{ PGFEED_JWT_PUBLIC_KEY_FILE: '/nonexistent.pem' }, 'PGFEED_JWT_PUBLIC_KEY_FILE'],
  ] as [Record<string, string>, string][]) {
    const started = startDaemon(t, db.url, env);
    const err = await started.then(() => null, (e: Error) => e);
    t.match(err?.message ?? '', new RegExp(key), `${Object.keys(env).join('+')}: refused, naming ${key}`);
  }
});
