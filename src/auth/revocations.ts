import type pg from 'pg';
import type { ChannelHandler } from '../db/listener.js';
import type { Logger } from '../log.js';

/** The channel pgfeed.revoke() notifies (sql/004_auth.sql), with the subject as payload. */
export const REVOKE_CHANNEL = 'pgfeed_revoke';

/**
 * A slow safety read of the whole table, as for the change log: a
 * notification is a hint, and one lost while the LISTEN connection was
 * silently dead must not leave a revoked subject streaming for long.
 */
const SAFETY_READ_MS = 10_000;

export interface Revocation {
  /** Epoch ms. Tokens issued before it are refused. */
  readonly at: number;
  readonly reason: string;
}

interface Row {
  subject: string;
  reason: string;
  at_ms: string;
}

// Whole milliseconds, cut as a JavaScript Date cuts them, so every place pgfeed prints the time prints the same one.
const SELECT = `SELECT subject, reason, floor(extract(epoch FROM revoked_at) * 1000)::bigint::text AS at_ms FROM pgfeed.revocations`;

/**
 * Every revocation in pgfeed.revocations, kept in memory (one row per
 * revoked subject) and refreshed from the table: on each notification, on
 * every (re)connect of the LISTEN connection, and on a slow timer.
 * `revoked` is told of each revocation that is new to this replica.
 */
export class Revocations implements ChannelHandler {
  private bySubject = new Map<string, Revocation>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    private readonly revoked: (subject: string, r: Revocation) => void,
  ) {
    this.timer = setInterval(() => void this.readAll(), SAFETY_READ_MS);
    this.timer.unref();
  }

  /** The revocation that refuses a token of `subject` issued at `issuedAt` (null: unknown, refused by any). */
  refusing(subject: string, issuedAt: number | null): Revocation | undefined {
    const r = this.bySubject.get(subject);
    if (!r) return undefined;
    // iat has whole seconds: a token issued in the second of the revocation is refused too.
    return issuedAt === null || issuedAt < r.at ? r : undefined;
  }

  /** The first read, before any stream is served: a failure fails the start. */
  async start(): Promise<void> {
    const { rows } = await this.pool.query<Row>(SELECT);
    this.bySubject = new Map(rows.map((r) => [r.subject, { at: Number(r.at_ms), reason: r.reason }]));
  }

  notified(subject: string): void {
    void this.read(`${SELECT} WHERE subject = $1`, [subject], false);
  }

  connected(): void {
    void this.readAll();
  }

  private readAll(): Promise<void> {
    return this.read(SELECT, [], true);
  }

  /** `all`: the rows are the whole table, so a subject missing from them was un-revoked (its row deleted). */
  private async read(sql: string, params: unknown[], all: boolean): Promise<void> {
    if (this.closed) return;
    let rows: Row[];
    try {
      rows = (await this.pool.query<Row>(sql, params)).rows;
    } catch (err) {
      // The safety read retries; the next reconnect reads again too.
      this.log.warn({ err: (err as Error).message }, 'cannot read revocations; retrying');
      return;
    }
    if (this.closed) return;
    if (all) {
      const present = new Set(rows.map((r) => r.subject));
      for (const s of [...this.bySubject.keys()]) if (!present.has(s)) this.bySubject.delete(s);
    }
    for (const row of rows) {
      const r = { at: Number(row.at_ms), reason: row.reason };
      const known = this.bySubject.get(row.subject);
      if (known && known.at >= r.at) continue;
      this.bySubject.set(row.subject, r);
      this.log.info({ subject: row.subject, reason: r.reason }, 'subject revoked');
      this.revoked(row.subject, r);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }
}
