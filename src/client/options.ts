/**
 * The options connect() and poll() share, checked at once: a bad option is a
 * thrown FeedError('invalid_option') naming the fix, never a request the
 * server refuses later.
 */
import { FeedError } from './feed-error.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface RequestOptions {
  /** The daemon (or its load balancer): `http://127.0.0.1:8787`, optionally with a path prefix. */
  readonly url: string;
  readonly project: string;
  /** Where to start: 0 (the default, all retained history), 'now', or the seq of an event (feed.position). */
  readonly after?: string | number;
  /**
   * Start at the first event of a transaction that began at or after this
   * time, instead of after a cursor: an RFC 3339 time or a Date. Only for the
   * start: once an event has arrived, the feed resumes from it. Not with `after`.
   */
  readonly since?: string | Date;
  /** Type names or prefix globs (`orders.*`); a list or a comma-separated string. */
  readonly types?: readonly string[] | string;
  /** A bearer token, sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** Called before every request for a fresh bearer token. Not with `token`. */
  readonly getToken?: () => string | Promise<string>;
  /** The fetch to use; globalThis.fetch by default. */
  readonly fetch?: FetchLike;
}

export interface Checked {
  readonly base: string;
  readonly project: string;
  readonly after: string | null;
  /** RFC 3339, or null. */
  readonly since: string | null;
  readonly types: string | null;
  readonly fetch: FetchLike;
  readonly token: () => Promise<string | null>;
}

function bad(message: string): FeedError {
  return new FeedError('invalid_option', message);
}

export function checkRequestOptions(o: RequestOptions, fn: string): Checked {
  if (o === null || typeof o !== 'object') throw bad(`${fn}() takes an options object: ${fn}({ url, project })`);
  let base: URL;
  try {
    base = new URL(o.url);
  } catch {
    throw bad(`url must be an absolute http(s) URL such as http://127.0.0.1:8787; got ${JSON.stringify(o.url)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw bad(`url must be http: or https:; got ${base.protocol}`);
  if (typeof o.project !== 'string' || o.project.length === 0) throw bad('project is required: a non-empty string');
  const fetchFn = o.fetch ?? (globalThis.fetch as FetchLike | undefined);
  if (typeof fetchFn !== 'function') throw bad('no fetch: pass options.fetch, or run where globalThis.fetch exists (Node 18+, every current browser)');
  if (o.token !== undefined && o.getToken !== undefined) throw bad('give token or getToken, not both');
  if (o.token !== undefined && typeof o.token !== 'string') throw bad('token must be a string');
  if (o.getToken !== undefined && typeof o.getToken !== 'function') throw bad('getToken must be a function returning a token (or a promise of one)');
  return {
    base: base.href.replace(/\/+$/, ''),
    project: o.project,
    after: checkAfter(o.after),
    since: checkSince(o.since, o.after),
    types: checkTypes(o.types),
    // A bound fetch: a browser's fetch throws "Illegal invocation" when called as a method of something else.
    fetch: o.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    token: tokenSource(o),
  };
}

export function checkAfter(after: string | number | undefined): string | null {
  if (after === undefined || after === null) return null;
  const s = String(after);
  if (s === 'now' || /^\d+$/.test(s)) return s;
  throw bad(`after must be 0, 'now', or the seq of an event (feed.position); got ${JSON.stringify(after)}`);
}

/** RFC 3339 with a zone, as the daemon takes it: `2026-12-01T10:00:00Z`, `2026-12-01T11:00:00.5+01:00`. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function checkSince(since: string | Date | undefined, after: unknown): string | null {
  if (since === undefined || since === null) return null;
  if (after !== undefined && after !== null) throw bad('give after or since, not both: since starts at a time, after at an event');
  if (since instanceof Date) {
    if (Number.isNaN(since.getTime())) throw bad('since is an invalid Date');
    return since.toISOString();
  }
  if (typeof since !== 'string' || !RFC3339.test(since) || Number.isNaN(Date.parse(since))) {
    throw bad(`since must be an RFC 3339 time with a zone, such as 2026-12-01T10:00:00Z, or a Date; got ${JSON.stringify(since)}`);
  }
  return since;
}

function checkTypes(types: readonly string[] | string | undefined): string | null {
  if (types === undefined) return null;
  const list = typeof types === 'string' ? types.split(',') : types;
  if (!Array.isArray(list) || list.some((p) => typeof p !== 'string' || p.length === 0)) {
    throw bad('types must be a list of type names or prefix globs, such as [\'orders.*\', \'pr_opened\']');
  }
  // The server checks each pattern's characters and says which is wrong.
  return list.join(',');
}

function tokenSource(o: RequestOptions): () => Promise<string | null> {
  const { token, getToken } = o;
  if (getToken) {
    return async () => {
      let t: unknown;
      try {
        t = await getToken();
      } catch (err) {
        throw new FeedError('token_failed', `getToken() failed: ${err instanceof Error ? err.message : String(err)}`, null, {}, { cause: err });
      }
      if (typeof t !== 'string') throw new FeedError('token_failed', `getToken() must return a string; it returned ${typeof t}`);
      return t;
    };
  }
  return async () => token ?? null;
}

/** The request headers every pgfeed request carries. */
export async function baseHeaders(c: Checked, accept: string): Promise<Record<string, string>> {
  const token = await c.token();
  return token === null ? { Accept: accept } : { Accept: accept, Authorization: `Bearer ${token}` };
}

export function endpoint(c: Checked, path: string, params: Record<string, string | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null) q.set(k, v);
  return `${c.base}${path}?${q}`;
}
