import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { PgfeedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Grant } from './grant.js';

/** `pgt_` and 32 random bytes in base64url: 256 bits, never guessed. */
const TICKET = /^pgt_[A-Za-z0-9_-]{43}$/;

/** How often expired tickets are deleted. Any replica may do it: deleting twice is harmless. */
const PRUNE_EVERY_MS = 60_000;

const hashOf = (ticket: string) => createHash('sha256').update(ticket).digest();

interface TicketRow {
  subject: string;
  project: string;
  types: string[] | null;
  issued_ms: string | null;
  expires_ms: string;
}

/**
 * Stream tickets, kept in pgfeed.tickets so that "single use" holds across
 * replicas: redeeming is one UPDATE, which exactly one request wins.
 */
export class TicketStore {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    this.timer.unref();
  }

  /** A new ticket for one project (and types: null for all the grant allows), expiring after the TTL or with its token. */
  async issue(grant: Grant, project: string, types: readonly string[] | null): Promise<{ ticket: string; expiresAt: Date }> {
    const ticket = `pgt_${randomBytes(32).toString('base64url')}`;
    // Postgres's clock for every expiry, so replicas with skewed clocks agree.
    const { rows } = await this.pool.query<{ expires_at: Date }>(
      `INSERT INTO pgfeed.tickets (hash, subject, project, types, token_issued_at, token_expires_at, expires_at)
       VALUES ($1, $2, $3, $4, to_timestamp($5 / 1000.0), to_timestamp($6 / 1000.0),
               least(now() + $7 * interval '1 millisecond', to_timestamp($6 / 1000.0)))
       RETURNING expires_at`,
      [hashOf(ticket), grant.subject, project, types, grant.issuedAt, grant.expiresAt, this.ttlMs],
    );
    return { ticket, expiresAt: rows[0].expires_at };
  }

  /**
   * Redeems a ticket: the first time before it expires, or again by a
   * reconnect of its stream (`resuming`: the request has Last-Event-ID)
   * while its token is valid, and only for its own project (a mistyped URL
   * does not spend it). Throws invalid_ticket, ticket_used or
   * project_forbidden.
   */
  async redeem(ticket: string, resuming: boolean, project: string): Promise<Grant> {
    if (!TICKET.test(ticket)) throw new PgfeedError('invalid_ticket', 'That is not a pgfeed ticket (pgt_ and 43 characters). Mint one with POST /v1/tickets.');
    const hash = hashOf(ticket);
    const { rows } = await this.pool.query<TicketRow>(
      `UPDATE pgfeed.tickets SET used_at = coalesce(used_at, now()), uses = uses + 1
       WHERE hash = $1 AND project = $3 AND token_expires_at > now()
         AND ((used_at IS NULL AND expires_at > now()) OR (used_at IS NOT NULL AND $2))
       RETURNING subject, project, types,
                 (extract(epoch FROM token_issued_at) * 1000)::bigint::text AS issued_ms,
                 (extract(epoch FROM token_expires_at) * 1000)::bigint::text AS expires_ms`,
      [hash, resuming, project],
    );
    const row = rows[0];
    if (row) {
      return {
        subject: row.subject,
        // The grant of the ticket: its one project and its types.
        projects: [row.project],
        types: row.types,
        issuedAt: row.issued_ms === null ? null : Number(row.issued_ms),
        expiresAt: Number(row.expires_ms),
      };
    }
    // Only a refusal pays for this second read: it says which refusal.
    const why = await this.pool.query<{ used: boolean; live: boolean; project: string }>(
      'SELECT used_at IS NOT NULL AS used, token_expires_at > now() AS live, project FROM pgfeed.tickets WHERE hash = $1',
      [hash],
    );
    const found = why.rows[0];
    if (found && found.project !== project) throw new PgfeedError('project_forbidden', `The ticket is for another project than ${JSON.stringify(project)}; it is not spent.`);
    if (found?.used && found.live) throw new PgfeedError('ticket_used');
    throw new PgfeedError('invalid_ticket');
  }

  async prune(): Promise<void> {
    try {
      const { rows } = await this.pool.query<{ n: string }>('SELECT pgfeed.prune_tickets() AS n');
      if (rows[0].n !== '0') this.log.debug({ tickets: Number(rows[0].n) }, 'expired tickets pruned');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot prune expired tickets; retrying later');
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
