import type { Access } from '../auth/auth.js';
import type { AuthHeaders } from '../auth/credentials.js';
import { PgfeedError } from '../errors.js';
import type { Filter, Position } from '../interfaces.js';
import type { RouteContext } from './context.js';
import type { StreamParams } from './params.js';

/** What a route read from its request before the first await. */
export interface RequestInput {
  readonly query: string;
  readonly headers: AuthHeaders;
  /** The request resumes a stream (Last-Event-ID): a used ticket may reopen it. */
  readonly resuming?: boolean;
  /** The route takes stream tickets (/v1/events). */
  readonly tickets?: boolean;
}

export interface Admitted<P extends StreamParams> {
  readonly params: P;
  /** What to serve: the request's filter, narrowed to what its token allows. */
  readonly filter: Filter;
  readonly pos: Position;
  /** With authentication on: held until the stream or poll ends (call its leave()). */
  readonly access?: Access;
  /** Gives the capacity place back: once the stream or poll is registered (it counts there), or refused. Idempotent. */
  readonly release: () => void;
}

/**
 * What every /v1 request goes through before it is served, in this order:
 * refused while closing; a capacity place taken before any work (the
 * database lookups below are the expensive part); the query parsed; with
 * authentication on, the credential checked against the project and types
 * (src/auth/), before anything about the project is looked up; the cursor
 * resolved to a position. Throws for reject(); on failure the places are
 * already released.
 */
export async function admit<P extends StreamParams>(ctx: RouteContext, input: RequestInput, parse: (query: string) => P): Promise<Admitted<P>> {
  if (ctx.closing()) throw new PgfeedError('shutting_down');
  const release = ctx.streams.admit();
  if (!release) throw new PgfeedError('over_capacity');
  let access: Access | undefined;
  try {
    const { query, credential } = ctx.auth ? ctx.auth.credential(input.query, input.headers, input.tickets === true) : { query: input.query, credential: null };
    const params = parse(query);
    access = ctx.auth ? await ctx.auth.admit(credential, params.filter, input.resuming === true) : undefined;
    const filter = access?.filter ?? params.filter;
    const pos = await ctx.feed.position(params.cursor, filter.project);
    if (access) ctx.log.debug({ subject: access.subject, project: filter.project, query: input.query }, 'request admitted');
    return { params, filter, pos, access, release };
  } catch (err) {
    // The query is logged redacted (src/log.ts): it may carry a ticket or a token.
    if (err instanceof PgfeedError) ctx.log.debug({ code: err.code, query: input.query }, 'request refused');
    access?.leave();
    release();
    throw err;
  }
}
