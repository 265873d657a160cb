import { PgfeedError } from '../errors.js';
import type { Position } from '../interfaces.js';
import type { RouteContext } from './context.js';
import { LimitError } from './limits.js';
import type { StreamParams } from './params.js';

export interface Admitted<P extends StreamParams> {
  readonly params: P;
  readonly pos: Position;
  /** Gives the capacity place back: once the stream or poll is registered (it counts there), or refused. Idempotent. */
  readonly release: () => void;
  /** Gives the client's place back: when the stream or poll ends, or is refused. Idempotent. */
  readonly leave: () => void;
}

/**
 * What every /v1 request goes through before it is served, in this order:
 * refused while closing; the client's rate; a capacity place and a place
 * of the client's, taken before any work (the database lookup below is the
 * expensive part); the query parsed; the cursor resolved to a position.
 * Throws for reject(); on failure both places are already given back.
 */
export async function admit<P extends StreamParams>(ctx: RouteContext, client: string, parse: () => P): Promise<Admitted<P>> {
  if (ctx.closing()) throw new PgfeedError('shutting_down');
  const waitMs = ctx.perClient.rate.take(client);
  if (waitMs > 0) throw new LimitError('rate_limited', `This client address may open ${ctx.perClient.rate.perSecond} streams or polls a second; retry after the Retry-After delay.`, Math.ceil(waitMs / 1000));
  const release = ctx.streams.admit();
  if (!release) throw new PgfeedError('over_capacity');
  const leave = ctx.perClient.streams.acquire(client);
  if (!leave) {
    release();
    throw new LimitError('too_many_streams', `This client address holds ${ctx.perClient.streams.max} streams and long-polls, as many as it may; close one, or retry after the Retry-After delay.`);
  }
  try {
    const params = parse();
    const pos = await ctx.feed.position(params.cursor, params.filter.project);
    return { params, pos, release, leave };
  } catch (err) {
    release();
    leave();
    throw err;
  }
}
