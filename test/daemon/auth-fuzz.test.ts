// Property-based fuzzing with fast-check of POST /v1/tickets bodies and of
// malformed JWTs on /v1/events and /v1/changes: every answer is a
// well-formed 4xx JSON error with a registered code, and the daemon lives on.
import fc from 'fast-check';
import t from 'tap';
import { ERROR_CODES } from '../../src/errors.js';
import { STATUS } from '../../src/http/status.js';
import { testDatabase } from '../harness/db.js';
import { startDaemon } from '../helpers/daemon.js';
import { AUTH_ENV, bearer, token } from '../helpers/tokens.js';

const RUNS = Number(process.env.PGFEED_FUZZ_RUNS ?? 1500);

/** Checks a response is a JSON error of a registered 4xx code with its status; returns the code. */
async function wellFormed4xx(r: Response, allowed: (status: number) => boolean = () => true): Promise<string> {
  const text = await r.text();
  if (r.status < 400 || r.status >= 500 || !allowed(r.status)) throw new Error(`status ${r.status}: ${text.slice(0, 200)}`);
  if (!(r.headers.get('content-type') ?? '').startsWith('application/json')) throw new Error(`status ${r.status} is not JSON`);
  const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
  const code = body.error?.code as keyof typeof ERROR_CODES;
  if (!code || !(code in ERROR_CODES) || typeof body.error?.message !== 'string') throw new Error(`not an error body: ${text.slice(0, 200)}`);
  if (STATUS[code].slice(0, 3) !== String(r.status)) throw new Error(`${code} came with ${r.status}, not ${STATUS[code]}`);
  return code;
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/**
 * Whether `jwt` is `valid` itself: the same header and payload text, and a
 * signature that decodes to the same bytes (base64url's last character
 * carries bits that decoding drops, and the decoder skips what is not base64url).
 */
function isValidItself(jwt: string, valid: string): boolean {
  const [a, b] = [jwt.split('.'), valid.split('.')];
  return a.length === 3 && a[0] === b[0] && a[1] === b[1] && Buffer.from(a[2], 'base64url').equals(Buffer.from(b[2], 'base64url'));
}

/** Malformed or hostile JWTs: random text, random segments, and real-looking headers with bad parts. */
function badJwt(valid: string): fc.Arbitrary<string> {
  const [h, p, s] = valid.split('.');
  const seg = fc.oneof(fc.base64String({ maxLength: 200 }).map((x) => x.replace(/=/g, '')), fc.string({ maxLength: 60 }), fc.constant(''));
  const header = fc.oneof(
    fc.constantFrom('none', 'None', 'HS384', 'RS256', 'ES256', 'EdDSA', 'HS256', '').map((alg) => b64({ alg, typ: 'JWT' })),
    fc.jsonValue().map(b64),
  );
  return fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.tuple(seg, seg, seg).map((xs) => xs.join('.')),
    fc.tuple(header, seg, seg).map((xs) => xs.join('.')),
    fc.tuple(header, fc.jsonValue().map(b64), fc.constantFrom('', s)).map((xs) => xs.join('.')),
    // The valid token with one part changed: its signature no longer holds.
    fc.tuple(fc.nat(2), seg).map(([i, x]) => [h, p, s].map((part, j) => (j === i ? x : part)).join('.')),
    fc.tuple(fc.nat(valid.length - 1), fc.string({ minLength: 1, maxLength: 1 })).map(([i, c]) => valid.slice(0, i) + c + valid.slice(i + 1)).filter((x) => x !== valid),
  ).filter((x) => !/[\r\n\0]/.test(x));
}

t.test(`fuzzing malformed JWTs (${RUNS} cases per endpoint)`, async (t) => {
  const db = await testDatabase(t);
  const daemon = await startDaemon(t, db.url, { ...AUTH_ENV, PGFEED_AUTH_COOKIE: 'pgfeed_token', PGFEED_ALLOW_QUERY_TOKEN: 'true' });
  const valid = await token({ projects: ['acme'] });
  const codes = new Map<string, number>();
  for (const path of ['/v1/events?project=acme', '/v1/changes?project=acme']) {
    await fc.assert(
      fc.asyncProperty(badJwt(valid), fc.constantFrom('header', 'cookie', 'query'), async (jwt, where) => {
        const headers: Record<string, string> = { Accept: 'text/event-stream' };
        let url = `${daemon.base}${path}`;
        // Header values are ByteStrings for fetch: keep what can be sent.
        const sendable = jwt.replace(/[^\x20-\x7e]/g, 'x');
        const sent = where === 'header' ? sendable : where === 'cookie' ? sendable.replace(/;/g, 'x') : jwt;
        // Making a case sendable can turn it back into the valid token (one `;` that was an `x`), and a changed last
        // character of the signature can decode to the same bytes: neither is a malformed token.
        fc.pre(!isValidItself(sent, valid));
        if (where === 'header') headers.Authorization = `Bearer ${sent}`;
        else if (where === 'cookie') headers.Cookie = `pgfeed_token=${sent}`;
        else url += `&access_token=${encodeURIComponent(sent)}`;
        // A case that is let in on /v1/events would open a stream that never ends: fail it within seconds, not at tap's timeout.
        const code = await wellFormed4xx(await fetch(url, { headers, signal: AbortSignal.timeout(10_000) }), (s) => s === 400 || s === 401);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }),
      { numRuns: RUNS },
    );
  }
  t.comment(`codes: ${JSON.stringify(Object.fromEntries(codes))}`);
  t.ok((codes.get('invalid_token') ?? 0) > RUNS, 'most cases are invalid tokens');
  const r = await fetch(`${daemon.base}/v1/changes?project=acme`, { headers: bearer(valid) });
  t.equal(r.status, 200, 'the daemon still serves a valid token');
  await r.body?.cancel();
});

t.test(`fuzzing POST /v1/tickets bodies (${RUNS} cases)`, async (t) => {
  const db = await testDatabase(t);
  const daemon = await startDaemon(t, db.url, AUTH_ENV);
  const tok = await token({ projects: ['acme', 'beta-*'], types: ['orders.*'] });
  const ticketLike = fc.record(
    {
      project: fc.oneof(fc.constantFrom('acme', 'beta-1', 'gamma', '', '*'), fc.string({ maxLength: 250 }), fc.jsonValue()),
      types: fc.oneof(fc.array(fc.oneof(fc.constantFrom('orders.*', 'orders.insert', 'users.*', '*', ''), fc.string({ maxLength: 30 })), { maxLength: 40 }), fc.jsonValue()),
      extra: fc.jsonValue(),
    },
    { requiredKeys: [] },
  );
  const valid = fc.record({ project: fc.constantFrom('acme', 'beta-1', 'beta-x'), types: fc.constantFrom(undefined, ['orders.*'], ['orders.insert', 'o*'], ['*']) });
  const body = fc.oneof(
    valid.map((o) => JSON.stringify(o)),
    ticketLike.map((o) => JSON.stringify(o)),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
    fc.nat(6000).map((n) => JSON.stringify({ project: 'acme', types: ['x'.repeat(n)] })),
  );
  let minted = 0;
  const codes = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(body, fc.boolean(), async (text, withToken) => {
      const r = await fetch(`${daemon.base}/v1/tickets`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(withToken ? bearer(tok) : {}) },
        body: text,
      });
      if (r.status === 201) {
        const b = (await r.json()) as { ticket?: string; expires_at?: string };
        if (!withToken || !/^pgt_/.test(b.ticket ?? '') || Number.isNaN(Date.parse(b.expires_at ?? ''))) throw new Error(`a bad 201: ${JSON.stringify(b)}`);
        minted++;
        return;
      }
      const code = await wellFormed4xx(r);
      codes.set(code, (codes.get(code) ?? 0) + 1);
      // The size is checked before anything else, the token before the body's content.
      if (!withToken && code !== 'missing_token' && code !== 'body_too_large') throw new Error(`without a token: ${code}`);
    }),
    { numRuns: RUNS },
  );
  t.comment(`${minted} tickets minted; refusals: ${JSON.stringify(Object.fromEntries(codes))}`);
  t.ok(minted > 0 && (codes.get('invalid_ticket_request') ?? 0) > 0 && (codes.get('missing_token') ?? 0) > 0, 'good bodies, bad bodies and missing tokens were all tried');
  const ok = await fetch(`${daemon.base}/v1/tickets`, { method: 'POST', headers: bearer(tok), body: '{"project":"acme"}' });
  t.equal(ok.status, 201, 'the daemon still mints');
  await ok.body?.cancel();
});
