import type { Access } from '../auth/auth.js';
import type { AuthHeaders } from '../auth/credentials.js';
import { PgfeedError } from '../errors.js';
import type { Filter, Position } from '../interfaces.js';
import type { RouteContext } from './context.js';
import { LimitError } from './limits.js';
import type { StreamParams } from './params.js';

/** What a route read from its request before the first await. */
export interface RequestInput {
  /** The client's address (src/http/client-address.ts), for the per-client limits. */
  readonly client: string;
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
  /** With authentication on: who was admitted, until when (expiry and revocation watch it). */
  readonly access?: Access;
  /** Gives the capacity place back: once the stream or poll is registered (it counts there), or refused. Idempotent. */
  readonly release: () => void;
  /** Gives the client's place and the subject's back: when the stream or poll ends. Idempotent. */
  readonly leave: () => void;
}

/**
 * What every /v1 request goes through before it is served, in this order:
 * refused while closing; the client's rate; a capacity place and a place
 * of the client's, taken before any work (the database lookups below are
 * the expensive part); the query parsed; with authentication on, the
 * credential checked against the project and types (src/auth/) and a place
 * of the subject's taken, before anything about the project is looked up;
 * the cursor resolved to a position. Throws for reject(); on failure every
 * place is already given back.
 */
export async function admit<P extends StreamParams>(ctx: RouteContext, input: RequestInput, parse: (query: string) => P): Promise<Admitted<P>> {
  if (ctx.closing()) throw new PgfeedError('shutting_down');
  const waitMs = ctx.perClient.rate.take(input.client);
  if (waitMs > 0) throw new LimitError('rate_limited', `This client address may open ${ctx.perClient.rate.perSecond} streams or polls a second; retry after the Retry-After delay.`, Math.ceil(waitMs / 1000));
  const release = ctx.streams.admit();
  if (!release) throw new PgfeedError('over_capacity');
  const leaveClient = ctx.perClient.streams.acquire(input.client);
  if (!leaveClient) {
    release();
    throw new LimitError('too_many_streams', `This client address holds ${ctx.perClient.streams.max} streams and long-polls, as many as it may; close one, or retry after the Retry-After delay.`);
  }
  let access: Access | undefined;
  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    leaveClient();
    access?.leave();
  };
  try {
    const { query, credential } = ctx.auth ? ctx.auth.credential(input.query, input.headers, input.tickets === true) : { query: input.query, credential: null };
    const params = parse(query);
    access = ctx.auth ? await ctx.auth.admit(credential, params.filter, input.resuming === true) : undefined;
    const filter = access?.filter ?? params.filter;
    const pos = await ctx.feed.position(params.cursor, filter.project);
    if (access) ctx.log.debug({ subject: access.subject, project: filter.project, query: input.query }, 'request admitted');
    return { params, filter, pos, access, release, leave };
  } catch (err) {
    // The query is logged redacted (src/log.ts): it may carry a ticket or a token.
    if (err instanceof PgfeedError) ctx.log.debug({ code: err.code, query: input.query }, 'request refused');
    leave();
    release();
    throw err;
  }
}
