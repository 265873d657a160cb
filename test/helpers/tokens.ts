// Tokens for the authentication tests, signed with jose as an issuer would.
import { randomUUID } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';

/** The HS256 secret the auth tests' daemons verify with. */
export const SECRET = 'pgfeed-test-secret-0123456789abcdef';
export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'pgfeed-test';

/** The daemon settings that verify `token()`'s tokens. */
export const AUTH_ENV: Record<string, string> = { PGFEED_JWT_SECRET: SECRET, PGFEED_JWT_ISSUER: ISSUER, PGFEED_JWT_AUDIENCE: AUDIENCE };

export interface TokenOptions {
  sub?: string;
  projects?: string[];
  types?: string[];
  /** Seconds from now (default 3600); negative for an expired token. */
  expiresInS?: number;
  /** Seconds from now; positive for a token not valid yet. */
  notBeforeS?: number;
  /** Seconds from now (default 0); false for no iat. */
  issuedAtS?: number | false;
  issuer?: string;
  audience?: string;
  secret?: string;
  /** Replaces the whole pgfeed claim. */
  claim?: unknown;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * An HS256 token with a pgfeed claim. Each has its own `jti`, as issuers
 * mint them: two tokens of one subject minted within the same second are
 * still different tokens.
 */
export function token(o: TokenOptions = {}): Promise<string> {
  const claim = o.claim ?? { projects: o.projects ?? ['*'], ...(o.types ? { types: o.types } : {}) };
  const jwt = new SignJWT({ pgfeed: claim } as JWTPayload)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(o.sub ?? 'alice')
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? AUDIENCE)
    .setJti(randomUUID())
    .setExpirationTime(now() + (o.expiresInS ?? 3600));
  if (o.issuedAtS !== false) jwt.setIssuedAt(now() + (o.issuedAtS ?? 0));
  if (o.notBeforeS !== undefined) jwt.setNotBefore(now() + o.notBeforeS);
  return jwt.sign(new TextEncoder().encode(o.secret ?? SECRET));
}

/** An unsecured token (`alg: none`) with the same claims. */
export function unsignedToken(payload: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
}

export const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

/** POST /v1/tickets; the parsed body and status. */
export async function mintTicket(base: string, tok: string | null, body: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(`${base}/v1/tickets`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(tok === null ? {} : bearer(tok)) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the test says so
  }
  return { status: r.status, body: parsed, headers: r.headers };
}
