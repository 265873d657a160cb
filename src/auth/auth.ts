import type pg from 'pg';
import { PgfeedError } from '../errors.js';
import { controlFrame } from '../feed/frame.js';
import { isValidTypePattern, MAX_TYPE_PATTERNS } from '../feed/type-filter.js';
import type { Filter } from '../interfaces.js';
import type { Logger } from '../log.js';
import type { TicketBody } from '../protocol.js';
import { KeyedLimit } from '../http/limits.js';
import type { OpenStream, Streams } from '../http/streams.js';
import { bearerToken, readCredential, type AuthHeaders, type Credential } from './credentials.js';
import { watchExpiry } from './expiry.js';
import { allowsProject, narrowTypes, type Grant } from './grant.js';
import { KeyRing, keySettingsGiven, type KeySettings } from './keys.js';
import { REVOKE_CHANNEL, Revocations, type Revocation } from './revocations.js';
import { TicketStore } from './tickets.js';
import { Verifier, type TokenSettings } from './verifier.js';

export interface AuthSettings extends KeySettings, TokenSettings {
  readonly authCookie: string;
  readonly allowQueryToken: boolean;
  readonly ticketTtlMs: number;
  readonly expiryWarningMs: number;
  readonly maxStreamsPerSubject: number;
}

/** Whether authentication is on: any key setting turns it on. */
export function authEnabled(s: KeySettings): boolean {
  return keySettingsGiven(s).length > 0;
}

/**
 * The settings that mean something only with a key: given without one,
 * the operator expects authentication that would silently be off.
 */
export function checkAuthSettings(s: AuthSettings & { readonly channel: string }): void {
  const keys = keySettingsGiven(s);
  if (keys.length > 1) throw new PgfeedError('invalid_config', `${keys.join(' and ')} are both set; tokens are verified with one key source: keep one`);
  if (keys.length === 1) {
    if (s.channel === REVOKE_CHANNEL) throw new PgfeedError('invalid_config', `PGFEED_CHANNEL ${REVOKE_CHANNEL} is the channel revocations use; choose another`);
    return;
  }
  const orphan = [
    s.jwtIssuer && 'PGFEED_JWT_ISSUER',
    s.jwtAudience && 'PGFEED_JWT_AUDIENCE',
    s.authCookie && 'PGFEED_AUTH_COOKIE',
    s.allowQueryToken && 'PGFEED_ALLOW_QUERY_TOKEN',
  ].find(Boolean);
  if (orphan) throw new PgfeedError('invalid_config', `${orphan} is set but authentication is off; set PGFEED_JWT_SECRET, PGFEED_JWT_PUBLIC_KEY_FILE or PGFEED_JWKS_FILE`);
}

/** What an admitted request may read, held until its stream or poll ends. */
export interface Access {
  readonly subject: string;
  readonly issuedAt: number | null;
  readonly expiresAt: number;
  /** The request's filter, its types narrowed to what the grant allows. */
  readonly filter: Filter;
  /** Runs `stop` on leave(), or at once if left already. */
  onLeave(stop: () => void): void;
  /** Gives the subject's place back and stops the expiry timers. Idempotent. */
  leave(): void;
}

class Admission implements Access {
  private stops: (() => void)[] | null;

  constructor(
    private readonly grant: Grant,
    readonly filter: Filter,
    release: () => void,
  ) {
    this.stops = [release];
  }

  get subject(): string {
    return this.grant.subject;
  }

  get issuedAt(): number | null {
    return this.grant.issuedAt;
  }

  get expiresAt(): number {
    return this.grant.expiresAt;
  }

  onLeave(stop: () => void): void {
    if (this.stops) this.stops.push(stop);
    else stop();
  }

  leave(): void {
    const stops = this.stops ?? [];
    this.stops = null;
    for (const stop of stops) stop();
  }
}

const MAX_TICKET_TYPES = MAX_TYPE_PATTERNS;

/**
 * Authentication and authorization of /v1 requests: tokens (JWT), stream
 * tickets, revocation and expiry. The request pipeline (src/http/pipeline.ts)
 * calls admit(); every way of reading the feed goes through it.
 */
export class Auth {
  private readonly verifier: Verifier;
  /** Open streams and long-polls per token subject, so one tenant (or one leaked token) cannot take every place of PGFEED_MAX_STREAMS. */
  private readonly places: KeyedLimit;
  private readonly tickets: TicketStore;
  readonly revocations: Revocations;

  private constructor(
    private readonly keys: KeyRing,
    private readonly settings: AuthSettings,
    pool: pg.Pool,
    private readonly log: Logger,
    private readonly streams: () => Streams | undefined,
  ) {
    this.verifier = new Verifier(keys, settings);
    this.places = new KeyedLimit(settings.maxStreamsPerSubject);
    this.tickets = new TicketStore(pool, settings.ticketTtlMs, log);
    this.revocations = new Revocations(pool, log, (subject, r) => this.endRevoked(subject, r));
  }

  /** Reads the keys and the revocations; both must work before anything is served. */
  static async open(settings: AuthSettings, pool: pg.Pool, log: Logger, streams: () => Streams | undefined): Promise<Auth> {
    const keys = await KeyRing.open(settings, log);
    const auth = new Auth(keys, settings, pool, log, streams);
    try {
      await auth.revocations.start();
    } catch (err) {
      auth.close();
      throw err;
    }
    void auth.tickets.prune();
    return auth;
  }

  /** The credential of a request, and its query without credential parameters. `ticket`: the route takes tickets. */
  credential(query: string, headers: AuthHeaders, ticket: boolean) {
    return readCredential(query, headers, { cookie: this.settings.authCookie, queryToken: this.settings.allowQueryToken, ticket });
  }

  /** A verified token's grant, refused if its subject was revoked after it was issued. */
  private async grantOfToken(token: string): Promise<Grant> {
    const grant = await this.verifier.verify(token);
    this.checkRevoked(grant);
    return grant;
  }

  private checkRevoked(grant: Grant): void {
    const r = this.revocations.refusing(grant.subject, grant.issuedAt);
    if (r) throw new PgfeedError('token_revoked', `The subject was revoked at ${new Date(r.at).toISOString()}${r.reason ? ` (${r.reason})` : ''}; get a token issued after that.`);
  }

  /**
   * Admits a request for `filter`: a valid credential whose grant allows
   * the project and (some of) the types, and a free place for its subject.
   * `resuming`: the request has Last-Event-ID, so a used ticket may reopen
   * its stream.
   */
  async admit(credential: Credential | null, filter: Filter, resuming: boolean): Promise<Access> {
    if (!credential) throw new PgfeedError('missing_token');
    let grant: Grant;
    if (credential.kind === 'ticket') {
      // The project is checked before the ticket is spent: a mistyped URL does not burn it.
      grant = await this.tickets.redeem(credential.ticket, resuming, filter.project);
      this.checkRevoked(grant);
    } else {
      grant = await this.grantOfToken(credential.token);
    }
    if (!allowsProject(grant, filter.project)) throw new PgfeedError('project_forbidden', `The token does not allow the project ${JSON.stringify(filter.project)}.`);
    const types = narrowTypes(filter.types, grant.types);
    const release = this.places.acquire(grant.subject);
    if (!release) throw new PgfeedError('subject_over_limit', `The subject holds ${this.settings.maxStreamsPerSubject} streams on this daemon, as many as it may (PGFEED_MAX_STREAMS_PER_SUBJECT). Close one, or retry later.`);
    return new Admission(grant, { project: filter.project, types }, release);
  }

  /** Arms a stream's expiry warning and end (its access's leave() disarms them). */
  watch(stream: OpenStream): void {
    if (stream.access) stream.access.onLeave(watchExpiry(stream.sub, stream.access.expiresAt, this.settings.expiryWarningMs));
  }

  /** POST /v1/tickets: a ticket for one project (and types), minted with a bearer token. */
  async mint(headers: AuthHeaders, body: () => unknown): Promise<TicketBody> {
    const token = bearerToken(headers);
    if (token === undefined) throw new PgfeedError('missing_token', 'POST /v1/tickets needs Authorization: Bearer <JWT>.');
    const grant = await this.grantOfToken(token);
    const { project, types } = ticketRequest(body());
    if (!allowsProject(grant, project)) throw new PgfeedError('project_forbidden', `The token does not allow the project ${JSON.stringify(project)}.`);
    // A ticket without types under an allowlist keeps the allowlist; [] (every type) is stored as NULL.
    const narrowed = narrowTypes(types ?? [], grant.types);
    const { ticket, expiresAt } = await this.tickets.issue(grant, project, narrowed.length ? narrowed : null);
    return { ticket, expires_at: expiresAt.toISOString() };
  }

  /** Ends the streams and long-polls of a subject whose tokens are now refused, each with pgfeed.revoked. */
  private endRevoked(subject: string, r: Revocation): void {
    const streams = this.streams();
    if (!streams) return;
    const refused = (a: Access | undefined) => a?.subject === subject && this.revocations.refusing(subject, a.issuedAt) !== undefined;
    for (const s of [...streams.sse]) if (refused(s.access)) s.sub.signal(controlFrame('pgfeed.revoked', { reason: r.reason }), true);
    for (const p of [...streams.polls]) if (refused(p.access)) p.finish();
  }

  reload(): Promise<boolean> {
    return this.keys.reload();
  }

  close(): void {
    this.keys.close();
    this.tickets.close();
    this.revocations.close();
    this.log.debug('authentication closed');
  }
}

/** `{"project": "acme", "types": ["orders.*"]}`, types optional; anything else is refused. */
function ticketRequest(body: unknown): { project: string; types?: string[] } {
  const bad = (why: string) => new PgfeedError('invalid_ticket_request', `The ticket request is not valid: ${why}. Send {"project": "<name>", "types": ["<pattern>", ...]}.`);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the body must be a JSON object');
  const { project, types, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) throw bad(`it has an unknown member ${JSON.stringify(unknown[0].slice(0, 40))}`);
  if (typeof project !== 'string' || project === '' || project.length > 200 || /[\x00-\x1f\x7f]/.test(project)) throw bad('project must be a string of 1-200 characters with no control characters');
  if (types === undefined) return { project };
  if (!Array.isArray(types) || types.length === 0 || types.length > MAX_TICKET_TYPES || types.some((p) => typeof p !== 'string' || !isValidTypePattern(p))) {
    throw bad(`types must be a list of 1 to ${MAX_TICKET_TYPES} event names or prefix globs`);
  }
  const unique = [...new Set(types as string[])].sort();
  return { project, types: unique.includes('*') ? [] : unique };
}
