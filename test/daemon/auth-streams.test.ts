// Stream tickets, expiry without a cut, revocation across two daemons, and
// the per-subject limit.
import t from 'tap';
import { testDatabase } from '../harness/db.js';
import { emit } from '../helpers/change-log.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectSse, getJson } from '../helpers/sse-client.js';
import { startSwitchProxy } from '../helpers/switch-proxy.js';
import { waitUntil } from '../helpers/wait.js';
import { AUTH_ENV, bearer, mintTicket, token } from '../helpers/tokens.js';

t.test('a ticket opens one stream, and the reconnects of that stream', async (t) => {
  const db = await testDatabase(t);
  const daemon = await startDaemon(t, db.url, { ...AUTH_ENV, PGFEED_TICKET_TTL_MS: '2000' });
  const other = await startDaemon(t, db.url, AUTH_ENV);
  const tok = await token({ projects: ['acme'], types: ['orders.*', 'pr_*'] });
  t.equal((await mintTicket(daemon.base, null, { project: 'acme' })).body.error?.code, 'missing_token', 'minting needs a bearer token');
  t.equal((await mintTicket(daemon.base, tok, { project: 'beta' })).body.error?.code, 'project_forbidden', 'and a project the token allows');
  t.equal((await mintTicket(daemon.base, tok, { project: 'acme', types: ['users.*'] })).body.error?.code, 'types_forbidden', 'and types it allows');
  const minted = await mintTicket(daemon.base, tok, { project: 'acme', types: ['orders.*'] });
  t.equal(minted.status, 201, 'a ticket: 201');
  t.match(minted.body.ticket, /^pgt_[A-Za-z0-9_-]{43}$/);
  const ttl = Date.parse(minted.body.expires_at) - Date.now();
  t.ok(ttl > 0 && ttl <= 2_500, `it expires after PGFEED_TICKET_TTL_MS (${ttl} ms)`);
  const ticket = minted.body.ticket as string;

  t.equal((await getJson(`${daemon.base}/v1/events?project=beta&ticket=${ticket}`)).body.error?.code, 'project_forbidden', 'for another project: refused, and not spent');
  const s = await connectSse(`${daemon.base}/v1/events?project=acme&after=0&ticket=${ticket}`);
  t.teardown(() => s.close());
  t.equal(s.status, 200, 'redeemed once');
  await emit(db.pool, 'acme', 'pr_opened');
  const [first] = await emit(db.pool, 'acme', 'orders.insert');
  await s.waitFor((c) => c.seqs.includes(first), 10_000, 'the first order');
  t.same(s.events.map((e) => e.event), ['orders.insert'], "only the ticket's types");
  for (const base of [daemon.base, other.base]) {
    // As an EventSource would: a stream if the ticket were let in again, so the check cannot hang on it.
    const again = await connectSse(`${base}/v1/events?project=acme&ticket=${ticket}`);
    await again.waitFor((c) => (c.status === 200 ? c.retry !== null : c.closed), 5_000, 'an answer').catch(() => {});
    again.close();
    t.equal(again.status, 401, `used again on ${base === daemon.base ? 'the same' : 'another'} daemon: 401`);
    t.equal(JSON.parse(again.body || '{}').error?.code, 'ticket_used', 'ticket_used');
  }
  // An EventSource reconnects to the same URL with Last-Event-ID, on any replica, even after the ticket's own expiry.
  await new Promise((r) => setTimeout(r, 2_100));
  const resumed = await connectSse(`${other.base}/v1/events?project=acme&after=0&ticket=${ticket}`, { 'Last-Event-ID': String(first) });
  t.teardown(() => resumed.close());
  t.equal(resumed.status, 200, 'a reconnect with Last-Event-ID is let in');
  const [second] = await emit(db.pool, 'acme', 'orders.update');
  await resumed.waitFor((c) => c.seqs.includes(second), 10_000, 'the second order');
  t.same(resumed.seqs, [second], 'resumed after the last event, nothing lost or repeated');

  const late = await mintTicket(daemon.base, tok, { project: 'acme' });
  await new Promise((r) => setTimeout(r, 2_100));
  t.equal((await getJson(`${daemon.base}/v1/events?project=acme&ticket=${late.body.ticket}`)).body.error?.code, 'invalid_ticket', 'a ticket never redeemed before its expiry: invalid_ticket');
  t.equal((await getJson(`${daemon.base}/v1/events?project=acme&ticket=pgt_guess`)).body.error?.code, 'invalid_ticket', 'a made-up ticket: invalid_ticket');
  const { rows } = await db.pool.query('SELECT pgfeed.prune_tickets() AS n');
  t.equal(Number(rows[0].n), 1, 'pruning removes the ticket nobody can redeem, and keeps the one in use');
});

t.test('a stream is warned before its token expires, then told and ended at exp', async (t) => {
  const db = await testDatabase(t);
  const daemon = await startDaemon(t, db.url, { ...AUTH_ENV, PGFEED_EXPIRY_WARNING_MS: '2000' });
  const tok = await token({ projects: ['acme'], expiresInS: 4 });
  const exp = JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString()).exp * 1000;
  const s = await connectSse(`${daemon.base}/v1/events?project=acme&after=0`, bearer(tok));
  t.teardown(() => s.close());
  const [seq] = await emit(db.pool, 'acme', 'tick');
  await s.waitFor((c) => c.seqs.includes(seq), 10_000, 'an event');
  await s.waitFor((c) => c.events.some((e) => e.event === 'pgfeed.expiring'), 10_000, 'pgfeed.expiring');
  const warnedAt = Date.now();
  t.ok(warnedAt >= exp - 2_600 && warnedAt < exp, `warned about 2 s before exp (${exp - warnedAt} ms before)`);
  t.equal(s.events.find((e) => e.event === 'pgfeed.expiring')?.json.expires_at, new Date(exp).toISOString(), 'with the expiry time');
  await s.waitFor((c) => c.closed, 10_000, 'the end of the stream');
  const endedAt = Date.now();
  t.ok(endedAt <= exp + 300 && endedAt >= exp - 1_000, `ended at exp, within the spread (${endedAt - exp} ms)`);
  const last = s.events.at(-1);
  t.equal(last?.event, 'pgfeed.expired', 'its last event is pgfeed.expired');
  t.equal(last?.json.expired_at, new Date(exp).toISOString());
  t.equal(s.lastEventId, String(seq), 'the client can resume from its last event');
});

t.test('pgfeed.revoke ends the subject\'s streams on every daemon within a second, and refuses its older tokens', async (t) => {
  const db = await testDatabase(t);
  // Daemon b reaches Postgres through a proxy that can cut it off.
  const pgPort = Number(new URL(db.url).port);
  const proxy = await startSwitchProxy(t, pgPort);
  const viaProxy = new URL(db.url);
  viaProxy.port = String(proxy.port);
  const a = await startDaemon(t, db.url, AUTH_ENV);
  const b = await startDaemon(t, viaProxy.toString(), AUTH_ENV);
  const bob = await token({ sub: 'bob', projects: ['acme'], issuedAtS: -5 });
  const carol = await token({ sub: 'carol', projects: ['acme'] });
  const open = async (base: string, tok: string) => {
    const s = await connectSse(`${base}/v1/events?project=acme&after=now`, bearer(tok));
    t.teardown(() => s.close());
    t.equal(s.status, 200);
    return s;
  };
  const bobA = await open(a.base, bob);
  const bobB = await open(b.base, bob);
  const carolA = await open(a.base, carol);
  const [before] = await emit(db.pool, 'acme', 'tick');
  for (const s of [bobA, bobB, carolA]) await s.waitFor((c) => c.seqs.includes(before), 10_000, 'an event before');
  // A long-poll of bob's, waiting on b: it is answered (empty) by the revocation, not by its 30 s wait.
  const bobPoll = getJson(`${b.base}/v1/changes?project=acme&after=${before}&wait=30`, bearer(bob));
  await waitUntil(async () => (await getJson(`${b.base}/readyz`)).body.long_polls === 1, 5_000, "bob's long-poll to wait");
  const revokedAt = Date.now();
  await db.pool.query(`SELECT pgfeed.revoke('bob', 'key leaked')`);
  const polled = await bobPoll;
  t.ok(Date.now() - revokedAt < 1_000, `bob's long-poll is answered within a second (${Date.now() - revokedAt} ms)`);
  t.same(polled.body.events, [], 'with nothing');
  for (const s of [bobA, bobB]) {
    await s.waitFor((c) => c.closed, 5_000, "bob's stream to end");
    t.ok(Date.now() - revokedAt < 1_000, `ended within a second (${Date.now() - revokedAt} ms)`);
    t.same(s.events.at(-1)?.json, { type: 'pgfeed.revoked', reason: 'key leaked' }, 'with pgfeed.revoked first');
  }
  const [marker] = await emit(db.pool, 'acme', 'tick');
  await carolA.waitFor((c) => c.seqs.includes(marker), 10_000, 'the marker');
  t.notOk(carolA.closed, "another subject's stream goes on");
  for (const d of [a, b]) {
    const r = await getJson(`${d.base}/v1/changes?project=acme`, bearer(bob));
    t.equal(r.body.error?.code, 'token_revoked', "bob's old token is refused on both daemons");
  }

  // b's connections are cut: it misses the NOTIFY, and catches up from the table when it reconnects.
  const dana = await token({ sub: 'dana', projects: ['acme'], issuedAtS: -5 });
  const danaB = await open(b.base, dana);
  proxy.target = 1;
  proxy.dropAll();
  await waitUntil(async () => (await getJson(`${b.base}/readyz`)).body.listen?.connected === false, 10_000, "b's LISTEN to drop");
  await db.pool.query(`SELECT pgfeed.revoke('dana', 'offboarded')`);
  t.notOk(danaB.closed, 'b cannot know yet');
  proxy.target = pgPort;
  await danaB.waitFor((c) => c.closed, 6_000, "dana's stream on b to end after the reconnect");
  t.same(danaB.events.at(-1)?.json, { type: 'pgfeed.revoked', reason: 'offboarded' }, 'with pgfeed.revoked');
});

t.test('a subject holds at most PGFEED_MAX_STREAMS_PER_SUBJECT streams; others are served', async (t) => {
  const db = await testDatabase(t);
  const daemon = await startDaemon(t, db.url, { ...AUTH_ENV, PGFEED_MAX_STREAMS_PER_SUBJECT: '2' });
  const erin = await token({ sub: 'erin', projects: ['acme'] });
  const streams = [await connectSse(`${daemon.base}/v1/events?project=acme`, bearer(erin)), await connectSse(`${daemon.base}/v1/events?project=acme`, bearer(erin))];
  t.teardown(() => streams.forEach((s) => s.close()));
  const third = await getJson(`${daemon.base}/v1/changes?project=acme`, bearer(erin));
  t.equal(third.status, 429, 'a third: 429');
  t.equal(third.body.error?.code, 'subject_over_limit');
  t.ok(Number(third.headers.get('retry-after')) >= 1, 'with Retry-After');
  const es = await connectSse(`${daemon.base}/v1/events?project=acme`, bearer(erin));
  await es.waitFor((c) => c.closed, 10_000, 'the refusal to end');
  t.equal(es.events[0]?.json?.code, 'subject_over_limit', 'an EventSource is asked to retry (pgfeed.unavailable)');
  t.equal((await getJson(`${daemon.base}/v1/changes?project=acme`, bearer(await token({ sub: 'frank', projects: ['acme'] })))).status, 200, 'another subject is served');
  streams[0].close();
  await waitUntil(async () => (await getJson(`${daemon.base}/v1/changes?project=acme`, bearer(erin))).status === 200, 5_000, 'a place to free up');
  t.pass('a closed stream gives its place back');
});
