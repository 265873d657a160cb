import { PgfeedError } from '../errors.js';
import type { HttpRequest } from '../http/uws.js';

/** Where a request's token or ticket came from. */
export type Credential =
  | { readonly kind: 'bearer' | 'cookie' | 'query'; readonly token: string }
  | { readonly kind: 'ticket'; readonly ticket: string };

/** The request headers credentials are read from; collected before the first await, when uWS's req is gone. */
export interface AuthHeaders {
  readonly authorization: readonly string[];
  readonly cookie: readonly string[];
}

/** The query parameters that carry credentials, and that logs redact (src/log.ts). */
export const TICKET_PARAM = 'ticket';
export const TOKEN_PARAM = 'access_token';

export function authHeaders(req: HttpRequest): AuthHeaders {
  const authorization: string[] = [];
  const cookie: string[] = [];
  // getHeader() returns only the first of repeated headers: collect them all.
  req.forEach((name, value) => {
    if (name === 'authorization') authorization.push(value);
    else if (name === 'cookie') cookie.push(value);
  });
  return { authorization, cookie };
}

/** The token of `Authorization: Bearer <token>`, or undefined without the header. */
export function bearerToken(headers: AuthHeaders): string | undefined {
  if (headers.authorization.length === 0) return undefined;
  if (headers.authorization.length > 1) throw new PgfeedError('invalid_token', 'The Authorization header is sent more than once; send it once.');
  const m = /^Bearer +([^ ]+) *$/i.exec(headers.authorization[0]);
  if (!m) throw new PgfeedError('invalid_token', 'The Authorization header must be "Bearer <token>".');
  return m[1];
}

/** The value of cookie `name`, or undefined. A cookie sent twice (two paths, two domains) is ambiguous: refused. */
function cookieValue(headers: AuthHeaders, name: string): string | undefined {
  const found: string[] = [];
  for (const header of headers.cookie) {
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim() === name) found.push(pair.slice(eq + 1).trim());
    }
  }
  if (found.length > 1) throw new PgfeedError('invalid_token', `The cookie ${name} is sent more than once; clear the stale one.`);
  return found[0];
}

export interface CredentialSources {
  /** The cookie that may carry a token; empty: none. */
  readonly cookie: string;
  /** Whether `access_token=` is accepted. */
  readonly queryToken: boolean;
  /** Whether `ticket=` is accepted (/v1/events only). */
  readonly ticket: boolean;
}

/**
 * The request's credential and its query without the credential parameters
 * (which the route's own parser would refuse as unknown). The first source
 * present wins, in this order: a ticket, the Authorization header, the
 * query token, the cookie; the cookie comes last because a browser sends it
 * unasked, beside whatever the page chose to send.
 */
export function readCredential(query: string, headers: AuthHeaders, sources: CredentialSources): { query: string; credential: Credential | null } {
  const rest = new URLSearchParams();
  let ticket: string | undefined;
  let queryToken: string | undefined;
  for (const [k, v] of new URLSearchParams(query)) {
    const taken = (k === TICKET_PARAM && sources.ticket) || (k === TOKEN_PARAM && sources.queryToken);
    if (!taken) {
      rest.append(k, v);
      continue;
    }
    if ((k === TICKET_PARAM ? ticket : queryToken) !== undefined) throw new PgfeedError('duplicate_parameter', `The parameter ${k} is given more than once; give it once.`);
    if (k === TICKET_PARAM) ticket = v;
    else queryToken = v;
  }
  const bearer = bearerToken(headers);
  const cookie = sources.cookie ? cookieValue(headers, sources.cookie) : undefined;
  const credential: Credential | null =
    ticket !== undefined ? { kind: 'ticket', ticket }
    : bearer !== undefined ? { kind: 'bearer', token: bearer }
    : queryToken !== undefined ? { kind: 'query', token: queryToken }
    : cookie !== undefined ? { kind: 'cookie', token: cookie }
    : null;
  return { query: rest.toString(), credential };
}
