// Concurrent writers and the ledger of what they committed. The ledger is the
// writers' side of the cross-check: every change_log row must be explained by a
// committed (or resolved-ambiguous) statement, and nothing rolled back may show up.

import type pg from 'pg';
import type { Cluster } from '../helpers/pg-cluster.js';
import { sleep } from '../helpers/wait.js';
import type { Rng } from './rng.js';

export const PROJECTS = ['acme', 'acme-eu', 'globex', 'initech'] as const;
/** fault_notes is tracked with a constant project, so its events all belong here. */
export const NOTES_PROJECT = 'acme';

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS public.fault_orders (
  id bigserial PRIMARY KEY,
  project text NOT NULL,
  writer int NOT NULL,
  token text NOT NULL,
  amount int NOT NULL DEFAULT 0,
  pad text
);
CREATE TABLE IF NOT EXISTS public.fault_notes (
  id bigserial PRIMARY KEY,
  writer int NOT NULL,
  token text NOT NULL,
  body text
);
SELECT pgfeed.track('public.fault_orders', 'project');
SELECT pgfeed.track('public.fault_notes', NULL, '${NOTES_PROJECT}');
`;

/** An event's identity: its op plus the newest token in its payload. Tokens
 *  come from one counter, so an update's new row always carries the larger one. */
export type Identity = string;

export interface PendingTx {
  label: string;
  events: Map<Identity, string>;
}

export class Ledger {
  private counter = 0;
  readonly committed = new Map<Identity, string>();
  readonly rolledBack = new Set<Identity>();
  readonly ambiguous: PendingTx[] = [];
  txCommitted = 0;
  txRolledBack = 0;

  token(): string {
    return `t${++this.counter}`;
  }

  commit(tx: PendingTx): void {
    this.txCommitted++;
    for (const [id, project] of tx.events) this.committed.set(id, project);
  }

  rollback(tx: PendingTx): void {
    this.txRolledBack++;
    for (const id of tx.events.keys()) this.rolledBack.add(id);
  }
}

export function identityOf(op: string | null, tokens: string[]): Identity | null {
  let best = -1;
  for (const t of tokens) {
    const n = typeof t === 'string' && t.startsWith('t') ? Number(t.slice(1)) : NaN;
    if (Number.isInteger(n) && n > best) best = n;
  }
  return best < 0 ? null : `${op ? op.toLowerCase() : 'emit'}:t${best}`;
}

interface OwnedRow {
  id: string;
  project: string;
  token: string;
}

/** Connection-level trouble (or no SQLSTATE at all) means we cannot know
 *  whether a COMMIT went through. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return !code || code.startsWith('08') || code.startsWith('57') || code === '53300';
}

/**
 * Runs one transaction and books its outcome in the ledger. `work` runs after
 * BEGIN and says how the transaction ends. A commit or rollback is booked as
 * such; if COMMIT was sent and the connection broke, the server may have
 * committed, so the transaction is ambiguous and the table decides later.
 * Any other failure is a rollback. Errors are rethrown.
 */
async function settle(client: pg.Client, ledger: Ledger, tx: PendingTx, work: () => Promise<'commit' | 'rollback'>): Promise<'commit' | 'rollback'> {
  let commitSent = false;
  try {
    await client.query('BEGIN');
    if ((await work()) === 'rollback') {
      await client.query('ROLLBACK');
      ledger.rollback(tx);
      return 'rollback';
    }
    commitSent = true;
    await client.query('COMMIT');
    ledger.commit(tx);
    return 'commit';
  } catch (err) {
    if (commitSent && isConnectionError(err)) ledger.ambiguous.push(tx);
    else ledger.rollback(tx);
    throw err;
  }
}

export interface WriterStats {
  errors: number;
  reconnects: number;
}

/** One writer: multi-statement transactions on tracked tables and
 *  pgfeed.emit, with savepoints and random rollbacks. */
export class Writer {
  readonly id: number;
  readonly stats: WriterStats = { errors: 0, reconnects: 0 };
  private readonly rng: Rng;
  private readonly cluster: Cluster;
  private readonly ledger: Ledger;
  private client: pg.Client | null = null;
  private rows: OwnedRow[] = [];
  private stopped = false;
  private done: Promise<void> | null = null;
  private readonly padChance: number;

  constructor(id: number, rng: Rng, cluster: Cluster, ledger: Ledger, padChance = 0.03) {
    this.id = id;
    this.rng = rng;
    this.cluster = cluster;
    this.ledger = ledger;
    this.padChance = padChance;
  }

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    await this.client?.end().catch(() => {});
    this.client = null;
  }

  private async connection(): Promise<pg.Client> {
    for (let attempt = 0; !this.stopped || attempt === 0; attempt++) {
      if (this.client) return this.client;
      try {
        this.client = await this.cluster.connect(`pgfeed-faults:writer-${this.id}`);
        if (attempt > 0) this.stats.reconnects++;
        return this.client;
      } catch {
        await sleep(Math.min(50 * 2 ** attempt, 1000));
      }
    }
    throw new Error('writer stopped');
  }

  private pad(): string | null {
    return this.rng.chance(this.padChance) ? 'x'.repeat(this.rng.int(4_000, 16_000)) : null;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let client: pg.Client;
      try {
        client = await this.connection();
      } catch {
        return;
      }
      await this.transaction(client);
      await sleep(this.rng.int(2, 30));
    }
  }

  /** One statement; returns the identity it produced and undo info. */
  private async statement(client: pg.Client, tx: PendingTx, touched: Set<OwnedRow>, changes: Array<() => void>): Promise<Identity> {
    const token = this.ledger.token();
    const roll = this.rng.next();
    const free = this.rows.filter((r) => !touched.has(r));
    if (roll < 0.35 || (roll < 0.6 && free.length === 0)) {
      const project = this.rng.pick(PROJECTS);
      const r = await client.query<{ id: string }>('INSERT INTO public.fault_orders (project, writer, token, amount, pad) VALUES ($1, $2, $3, $4, $5) RETURNING id', [project, this.id, token, this.rng.int(1, 999), this.pad()]);
      const row = { id: r.rows[0].id, project, token };
      touched.add(row);
      changes.push(() => this.rows.push(row));
      tx.events.set(`insert:${token}`, project);
      return `insert:${token}`;
    }
    if (roll < 0.45) {
      const row = this.rng.pick(free);
      touched.add(row);
      await client.query('UPDATE public.fault_orders SET amount = amount + 1, token = $2 WHERE id = $1', [row.id, token]);
      changes.push(() => (row.token = token));
      tx.events.set(`update:${token}`, row.project);
      return `update:${token}`;
    }
    if (roll < 0.52) {
      // A move to another project: a delete-shaped move_out carrying the old
      // row (its current token) to the old project, and an insert-shaped
      // move_in carrying the new token to the new one.
      const row = this.rng.pick(free);
      const to = this.rng.pick(PROJECTS.filter((p) => p !== row.project));
      touched.add(row);
      await client.query('UPDATE public.fault_orders SET project = $2, token = $3 WHERE id = $1', [row.id, to, token]);
      changes.push(() => Object.assign(row, { project: to, token }));
      tx.events.set(`delete:${row.token}`, row.project);
      tx.events.set(`insert:${token}`, to);
      return `insert:${token}`;
    }
    if (roll < 0.6) {
      const row = this.rng.pick(free);
      touched.add(row);
      await client.query('DELETE FROM public.fault_orders WHERE id = $1', [row.id]);
      changes.push(() => (this.rows = this.rows.filter((r) => r !== row)));
      // A delete carries the old row, whose newest token is the row's current one.
      tx.events.set(`delete:${row.token}`, row.project);
      return `delete:${row.token}`;
    }
    if (roll < 0.72) {
      await client.query('INSERT INTO public.fault_notes (writer, token, body) VALUES ($1, $2, $3)', [this.id, token, this.pad() ?? 'note']);
      tx.events.set(`insert:${token}`, NOTES_PROJECT);
      return `insert:${token}`;
    }
    const project = this.rng.pick(PROJECTS);
    const type = this.rng.pick(['fault.tick', 'fault.audit', 'pr_review_thread_added']);
    await client.query('SELECT pgfeed.emit($1, $2, $3::jsonb)', [project, type, JSON.stringify({ token, writer: this.id, pad: this.pad() })]);
    tx.events.set(`emit:${token}`, project);
    return `emit:${token}`;
  }

  private async transaction(client: pg.Client): Promise<void> {
    const tx: PendingTx = { label: `writer ${this.id}`, events: new Map() };
    const touched = new Set<OwnedRow>();
    const changes: Array<() => void> = [];
    let commitSent = false;
    try {
      await client.query('BEGIN');
      const statements = this.rng.int(1, 5);
      for (let i = 0; i < statements; i++) {
        if (this.rng.chance(0.15)) {
          // A savepoint block: its statements vanish if rolled back to.
          await client.query('SAVEPOINT sp');
          const inner: PendingTx = { label: tx.label, events: new Map() };
          // Start from the outer set: a row deleted earlier in this transaction is gone.
          const innerTouched = new Set<OwnedRow>(touched);
          const innerChanges: Array<() => void> = [];
          const n = this.rng.int(1, 2);
          for (let j = 0; j < n; j++) await this.statement(client, inner, innerTouched, innerChanges);
          if (this.rng.chance(0.5)) {
            await client.query('ROLLBACK TO SAVEPOINT sp');
            for (const id of inner.events.keys()) this.ledger.rolledBack.add(id);
          } else {
            await client.query('RELEASE SAVEPOINT sp');
            for (const [id, p] of inner.events) tx.events.set(id, p);
            for (const r of innerTouched) touched.add(r);
            changes.push(...innerChanges);
          }
        } else {
          await this.statement(client, tx, touched, changes);
        }
      }
      if (this.rng.chance(0.1)) {
        await client.query('ROLLBACK');
        this.ledger.rollback(tx);
        return;
      }
      commitSent = true;
      await client.query('COMMIT');
      this.ledger.commit(tx);
      for (const c of changes) c();
    } catch (err) {
      this.stats.errors++;
      const broken = isConnectionError(err);
      if (commitSent && broken) {
        // The server may have committed before the connection died; the
        // table decides later. The rows it touched are left alone from now on.
        this.ledger.ambiguous.push(tx);
        this.rows = this.rows.filter((r) => !touched.has(r));
      } else {
        this.ledger.rollback(tx);
        if (!broken) await client.query('ROLLBACK').catch(() => {});
      }
      if (broken) {
        await client.end().catch(() => {});
        if (this.client === client) this.client = null;
        await sleep(this.rng.int(20, 200));
      }
    }
  }
}

/** A burst of rows written straight into change_log, bypassing the triggers and
 *  therefore pg_notify: only the daemon's safety poll can find them. */
export async function quietBurst(cluster: Cluster, rng: Rng, ledger: Ledger, opts: { project?: string; big?: boolean } = {}): Promise<number> {
  const txs = rng.int(1, 3);
  let written = 0;
  const client = await cluster.connect('pgfeed-faults:burst');
  try {
    for (let t = 0; t < txs; t++) {
      const n = rng.int(20, 150);
      const project = opts.project ?? rng.pick(PROJECTS);
      const big = opts.big ?? rng.chance(0.3);
      const tx: PendingTx = { label: 'quiet burst', events: new Map() };
      const payloads: string[] = [];
      for (let i = 0; i < n; i++) {
        const token = ledger.token();
        tx.events.set(`emit:${token}`, project);
        payloads.push(JSON.stringify({ token, burst: true, pad: big ? 'q'.repeat(rng.int(2_000, 12_000)) : null }));
      }
      await settle(client, ledger, tx, async () => {
        await client.query(`INSERT INTO pgfeed.change_log (project, type, data) SELECT $1, 'fault.quiet', d::jsonb FROM unnest($2::text[]) WITH ORDINALITY AS u(d, i) ORDER BY i`, [project, payloads]);
        return 'commit';
      });
      written += n;
    }
  } finally {
    await client.end().catch(() => {});
  }
  return written;
}

/** A writing transaction that stays open, pinning the xmin horizon: every
 *  later commit is held back until it ends, and its end may send no NOTIFY. */
export async function longTransaction(
  cluster: Cluster,
  rng: Rng,
  ledger: Ledger,
  holdMs: number,
  /** Called `probeAtMs` into the hold with the backend pid that holds the horizon. */
  probe?: { atMs: number; run: (pid: number) => Promise<void> },
): Promise<'commit' | 'rollback'> {
  const client = await cluster.connect('pgfeed-faults:long-tx');
  const tx: PendingTx = { label: 'long transaction', events: new Map() };
  try {
    return await settle(client, ledger, tx, async () => {
      const project = rng.pick(PROJECTS);
      const token = ledger.token();
      await client.query('SELECT pgfeed.emit($1, $2, $3::jsonb)', [project, 'fault.long', JSON.stringify({ token })]);
      tx.events.set(`emit:${token}`, project);
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await Promise.all([sleep(holdMs), probe ? sleep(probe.atMs).then(() => probe.run(pid)) : null]);
      const token2 = ledger.token();
      await client.query('SELECT pgfeed.emit($1, $2, $3::jsonb)', [project, 'fault.long', JSON.stringify({ token: token2 })]);
      tx.events.set(`emit:${token2}`, project);
      return rng.chance(0.25) ? 'rollback' : 'commit';
    });
  } finally {
    await client.end().catch(() => {});
  }
}
