// Writers: commit rows of the tracked table public.orders at a target rate,
// round-robin over projects p0..p{P-1}. Several connections write at once so
// that transactions overlap and commit out of seq order, which is exactly
// the case pgfeed's (xid, seq) ordering exists for.

import pg from 'pg';
import { PAYLOAD } from './sample-row.js';
import { deliveryOrder } from '../../test/helpers/change-log.js';

const INSERT = `INSERT INTO public.orders (project, sent_us, payload)
  SELECT p, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint, $2 FROM unnest($1::text[]) AS p`;

// Rows due in one tick go out as one statement (one transaction, one NOTIFY)
// per free connection; a cap keeps transactions small when catching up.
const MAX_ROWS_PER_STATEMENT = 100;
const TICK_MS = 5;

export interface WriterOptions {
  rate: number;
  projects: number;
  connections?: number;
}

export class Writers {
  private clients: pg.Client[] = [];
  private idle: pg.Client[] = [];
  private timer: NodeJS.Timeout | null = null;
  private issued = 0;
  private next = 0;
  committed = 0;
  statements = 0;
  private inflight = new Set<Promise<void>>();
  private t0 = 0;
  private error: Error | null = null;

  constructor(
    private readonly url: string,
    private readonly o: WriterOptions,
  ) {}

  async start(): Promise<void> {
    const n = this.o.connections ?? 4;
    for (let i = 0; i < n; i++) {
      const c = new pg.Client({ connectionString: this.url });
      await c.connect();
      this.clients.push(c);
      this.idle.push(c);
    }
    this.t0 = performance.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.t0) / 1000) * this.o.rate);
    while (this.issued < due && this.idle.length > 0) {
      const n = Math.min(due - this.issued, MAX_ROWS_PER_STATEMENT);
      const projects: string[] = [];
      for (let i = 0; i < n; i++) projects.push(`p${this.next++ % this.o.projects}`);
      this.issued += n;
      const c = this.idle.pop()!;
      const p = c
        .query(INSERT, [projects, PAYLOAD])
        .then(
          () => {
            this.committed += n;
            this.statements++;
          },
          (err: Error) => {
            this.error ??= err;
          },
        )
        .finally(() => {
          this.idle.push(c);
          this.inflight.delete(p);
        });
      this.inflight.add(p);
    }
  }

  /** Behind schedule by this many rows (the database cannot keep up). */
  get backlog(): number {
    return Math.floor(((performance.now() - this.t0) / 1000) * this.o.rate) - this.issued;
  }

  /** Stops issuing and waits for in-flight statements; returns rows committed. */
  async stop(): Promise<{ committed: number; statements: number; seconds: number }> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.inflight]);
    const seconds = (performance.now() - this.t0) / 1000;
    if (this.error) throw new Error(`writers failed: ${this.error.message}`, { cause: this.error });
    return { committed: this.committed, statements: this.statements, seconds };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.inflight]);
    await Promise.allSettled(this.clients.map((c) => c.end()));
    this.clients = [];
  }
}

/** The committed stream order of every project: what each client must see. */
export async function expectedOrder(url: string, projects: string[]): Promise<Record<string, number[]>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, number[]> = {};
    for (const p of projects) {
      out[p] = await deliveryOrder(c, p);
    }
    return out;
  } finally {
    await c.end();
  }
}
