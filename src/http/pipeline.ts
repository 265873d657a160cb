import { PgfeedError } from '../errors.js';
import type { Position } from '../interfaces.js';
import type { RouteContext } from './context.js';
import type { StreamParams } from './params.js';

export interface Admitted<P extends StreamParams> {
  readonly params: P;
  readonly pos: Position;
  /** Gives the capacity place back: once the stream or poll is registered (it counts there), or refused. Idempotent. */
  readonly release: () => void;
}

/**
 * What every /v1 request goes through before it is served, in this order:
 * refused while closing; a capacity place taken before any work (the
 * database lookup below is the expensive part); the query parsed; the cursor
 * resolved to a position. Throws for reject(); on failure the place is
 * already released.
 */
export async function admit<P extends StreamParams>(ctx: RouteContext, parse: () => P): Promise<Admitted<P>> {
  if (ctx.closing()) throw new PgfeedError('shutting_down');
  const release = ctx.streams.admit();
  if (!release) throw new PgfeedError('over_capacity');
  try {
    const params = parse();
    const pos = await ctx.feed.position(params.cursor, params.filter.project);
    return { params, pos, release };
  } catch (err) {
    release();
    throw err;
  }
}
