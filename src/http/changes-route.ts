import { authHeaders } from '../auth/credentials.js';
import type { Page } from '../feed/feed.js';
import type { Cursor } from '../interfaces.js';
import { changesPageJson } from '../protocol.js';
import type { RouteContext } from './context.js';
import { clientAddress } from './client-address.js';
import { parsePollParams, type PollParams } from './params.js';
import { admit, type Admitted, type RequestInput } from './pipeline.js';
import { reject } from './reject.js';
import { sendJson } from './status.js';
import type { OpenPoll } from './streams.js';
import type { HttpRequest, HttpResponse } from './uws.js';

interface PollState {
  aborted: boolean;
  /** Stops a waiting long-poll; set while one waits. */
  stop: () => void;
  /** Gives the client's and the subject's places back; set once admitted. */
  leave: () => void;
}

const EMPTY: Page = { events: [], hasMore: false };

/** GET /v1/changes: one page of the stream, optionally waiting for it. */
export function changesRoute(ctx: RouteContext) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const state: PollState = { aborted: false, stop: () => {}, leave: () => {} };
    res.onAborted(() => {
      state.aborted = true;
      state.stop();
      state.leave();
    });
    const input: RequestInput = { client: clientAddress(res, req, ctx.trustedProxyHeader), query: req.getQuery() ?? '', headers: authHeaders(req) };
    void poll(ctx, res, input, state);
  };
}

async function poll(ctx: RouteContext, res: HttpResponse, input: RequestInput, state: PollState): Promise<void> {
  let admitted: Admitted<PollParams> | undefined;
  try {
    admitted = await admit(ctx, input, parsePollParams);
    const { params, filter, pos, access } = admitted;
    state.leave = admitted.leave;
    if (state.aborted) return admitted.leave();
    const page = await ctx.feed.page(pos, filter, params.limit);
    if (state.aborted) return;
    // The wait ends with the token's authorization.
    const waitMs = access ? Math.min(params.waitMs, access.expiresAt - Date.now()) : params.waitMs;
    if (page.events.length || waitMs <= 0 || ctx.closing()) return answer(ctx, res, page, params.cursor, state);
    longPoll(ctx, res, admitted, waitMs, state);
  } catch (err) {
    admitted?.leave();
    if (!state.aborted) reject(ctx, res, err);
  } finally {
    // A long-poll counts in `polls` from here on.
    admitted?.release();
  }
}

/** Waits for the project's next events, or the deadline, or shutdown (or, with authentication, a revocation). */
function longPoll(ctx: RouteContext, res: HttpResponse, admitted: Admitted<PollParams>, waitMs: number, state: PollState): void {
  const { params, filter, pos, access } = admitted;
  let done = false;
  let stopWaiting = () => {};
  const finish = (page: Page) => {
    if (done) return;
    done = true;
    state.stop();
    if (!state.aborted) answer(ctx, res, page, params.cursor, state);
  };
  const poller: OpenPoll = { finish: () => finish(EMPTY), access };
  const timer = setTimeout(() => finish(EMPTY), waitMs);
  state.stop = () => {
    clearTimeout(timer);
    stopWaiting();
    ctx.streams.polls.delete(poller);
    ctx.metrics.polls.set(ctx.streams.polls.size);
  };
  ctx.streams.polls.add(poller);
  ctx.metrics.polls.set(ctx.streams.polls.size);
  stopWaiting = ctx.feed.waitFor(pos, filter, params.limit, finish);
}

function answer(ctx: RouteContext, res: HttpResponse, page: Page, cursor: Cursor, state: PollState): void {
  state.leave();
  if (page.reset) {
    const earliest = page.reset.earliest === null ? null : String(page.reset.earliest);
    return sendJson(res, '200 OK', changesPageJson([], null, false, ctx.health.conditions(), { earliest }));
  }
  ctx.metrics.delivered.inc(page.events.length);
  const last = page.events[page.events.length - 1];
  // The last event's seq, not the largest: seqs are not monotonic.
  const next = last ? String(last.pos.seq) : cursor.kind === 'seq' ? String(cursor.seq) : null;
  sendJson(res, '200 OK', changesPageJson(page.events.map((e) => e.json), next, page.hasMore, ctx.health.conditions()));
}
