import { PgfeedError } from '../errors.js';
import type { FeedEvent, Filter, Position } from '../interfaces.js';
import type { Receiver } from '../feed/hub.js';
import { typeMatcher } from '../feed/type-filter.js';
import { isAfter } from '../position.js';
import { resolveCursor } from './cursor.js';
import { parsePollParams, type Cursor } from './params.js';
import { sendJson } from './status.js';
import type { RouteContext } from './server.js';
import type { HttpRequest, HttpResponse } from './uws.js';

/** GET /v1/changes: one page of the stream, optionally waiting for it. */
export function changesRoute(ctx: RouteContext) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const state = { aborted: false, cleanup: () => {} };
    res.onAborted(() => {
      state.aborted = true;
      state.cleanup();
    });
    void poll(ctx, res, req.getQuery() ?? '', state);
  };
}

interface Page {
  events: FeedEvent[];
  hasMore: boolean;
}

/**
 * Reads a page after pos: from the ring when it covers pos and fills the
 * page, otherwise from Postgres. A short page from memory may only mean the
 * tail has not read the newest commits yet, and a poll must be fresh.
 */
async function readPage(ctx: RouteContext, pos: Position, filter: Filter, limit: number): Promise<Page> {
  const ring = ctx.feed.tail.ring;
  if (ring.covers(pos)) {
    const matches = typeMatcher(filter.types);
    const events: FeedEvent[] = [];
    for (let i = ring.indexAfter(pos); i < ring.size && events.length <= limit; i++) {
      const ev = ring.at(i);
      if (ev.project === filter.project && matches(ev.type)) events.push(ev);
    }
    if (events.length > limit) return { events: events.slice(0, limit), hasMore: true };
  }
  const batch = await ctx.feed.catchup.read(pos, filter, limit);
  return { events: [...batch.events], hasMore: batch.full };
}

function body(page: Page, cursor: Cursor): string {
  const last = page.events[page.events.length - 1];
  const next = last ? `"${last.pos.seq}"` : cursor.kind === 'seq' ? `"${cursor.seq}"` : 'null';
  return `{"events":[${page.events.map((e) => e.json).join(',')}],"next":${next},"has_more":${page.hasMore}}`;
}

async function poll(ctx: RouteContext, res: HttpResponse, query: string, state: { aborted: boolean; cleanup: () => void }): Promise<void> {
  let params;
  let release: (() => void) | null = null;
  try {
    if (ctx.closing()) throw new PgfeedError('shutting_down');
    release = ctx.streams.admit();
    if (!release) throw new PgfeedError('over_capacity');
    params = parsePollParams(query);
    const pos = await resolveCursor(params.cursor, params.filter, ctx.pool, ctx.feed.tail, ctx.feed.metrics);
    if (state.aborted) return;
    const page = await readPage(ctx, pos, params.filter, params.limit);
    if (state.aborted) return;
    if (page.events.length || params.waitMs === 0 || ctx.closing()) {
      ctx.feed.metrics.delivered.inc(page.events.length);
      return sendJson(res, '200 OK', body(page, params.cursor));
    }
    await longPoll(ctx, res, params.filter, params.limit, params.waitMs, pos, params.cursor, state, release);
  } catch (err) {
    if (!state.aborted) ctx.reject(res, err);
  } finally {
    release?.();
  }
}

/** Waits in the hub for the project's next events, or the deadline, or shutdown. */
function longPoll(
  ctx: RouteContext, res: HttpResponse, filter: Filter, limit: number, waitMs: number,
  pos: Position, cursor: Cursor, state: { aborted: boolean; cleanup: () => void }, release: () => void,
): Promise<void> {
  return new Promise((resolve) => {
    const matches = typeMatcher(filter.types);
    let done = false;
    const finish = (events: FeedEvent[] = [], hasMore = false) => {
      if (done) return;
      done = true;
      state.cleanup();
      if (!state.aborted) {
        ctx.feed.metrics.delivered.inc(events.length);
        sendJson(res, '200 OK', body({ events, hasMore }, cursor));
      }
      resolve();
    };
    const receiver: Receiver = {
      project: filter.project,
      receive(events) {
        const fresh = events.filter((e) => isAfter(e.pos, pos) && matches(e.type));
        if (fresh.length) finish(fresh.slice(0, limit), fresh.length > limit);
      },
    };
    const poller = { finish: () => finish() };
    const timer = setTimeout(() => finish(), waitMs);
    state.cleanup = () => {
      clearTimeout(timer);
      ctx.feed.hub.remove(receiver);
      ctx.streams.polls.delete(poller);
      ctx.feed.metrics.polls.set(ctx.streams.polls.size);
    };
    ctx.feed.hub.add(receiver);
    ctx.streams.polls.add(poller);
    release(); // the poll now counts in `polls`
    ctx.feed.metrics.polls.set(ctx.streams.polls.size);
    // The tail may have passed pos between the page read and registering: look once more.
    if (!ctx.feed.tail.ring.covers(pos)) return;
    const ring = ctx.feed.tail.ring;
    const missed: FeedEvent[] = [];
    for (let i = ring.indexAfter(pos); i < ring.size; i++) {
      const ev = ring.at(i);
      if (ev.project === filter.project && matches(ev.type)) missed.push(ev);
    }
    if (missed.length) finish(missed.slice(0, limit), missed.length > limit);
  });
}
