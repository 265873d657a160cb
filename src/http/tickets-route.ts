import type { Auth } from '../auth/auth.js';
import { authHeaders } from '../auth/credentials.js';
import { PgfeedError } from '../errors.js';
import type { RouteContext } from './context.js';
import { reject } from './reject.js';
import { sendJson } from './status.js';
import type { HttpRequest, HttpResponse } from './uws.js';

/** The most bytes a ticket request's body may have; a real one is well under 1 KiB. */
export const MAX_TICKET_BODY_BYTES = 4 * 1024;

const tooLarge = () => new PgfeedError('body_too_large', `The request body is larger than ${MAX_TICKET_BODY_BYTES} bytes; a ticket request is {"project": "<name>", "types": [...]}.`);

/** POST /v1/tickets: a single-use stream ticket, minted with a bearer token (see docs/security.md). */
export function ticketsRoute(ctx: RouteContext, auth: Auth) {
  return (res: HttpResponse, req: HttpRequest): void => {
    let answered = false;
    res.onAborted(() => (answered = true));
    const refuse = (err: unknown, close = false) => {
      if (answered) return;
      answered = true;
      reject(ctx, res, err, { close });
    };
    // Everything from req must be read now: it is gone after the first await.
    const headers = authHeaders(req);
    if (req.getQuery()) return refuse(new PgfeedError('unknown_parameter', 'POST /v1/tickets takes no query parameters; send the request as a JSON body.'), true);
    if (ctx.closing()) return refuse(new PgfeedError('shutting_down'), true);
    // Refused before a byte of it is read, when the length is declared.
    const declared = Number(req.getHeader('content-length') || 0);
    if (declared > MAX_TICKET_BODY_BYTES) return refuse(tooLarge(), true);
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, last) => {
      if (answered) return;
      size += chunk.byteLength;
      if (size > MAX_TICKET_BODY_BYTES) return refuse(tooLarge(), !last);
      // uWS reuses the chunk's memory once this returns: copy it.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (last) void mint(Buffer.concat(chunks));
    });
    const mint = async (raw: Buffer) => {
      try {
        // Read only once the token is verified: an anonymous caller learns nothing from the body's errors.
        const body = () => {
          try {
            return JSON.parse(raw.toString('utf8')) as unknown;
          } catch {
            throw new PgfeedError('invalid_ticket_request', 'The body is not JSON; send {"project": "<name>", "types": [...]} with Content-Type: application/json.');
          }
        };
        const ticket = await auth.mint(headers, body);
        if (answered) return;
        answered = true;
        sendJson(res, '201 Created', ticket);
      } catch (err) {
        refuse(err);
      }
    };
  };
}
