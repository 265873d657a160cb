import { errors, jwtVerify, type JWTVerifyGetKey, type KeyObject } from 'jose';
import { PgfeedError } from '../errors.js';
import { grantOf, type Grant } from './grant.js';
import type { KeyRing } from './keys.js';

export interface TokenSettings {
  /** Required `iss`; empty: not checked. */
  readonly jwtIssuer: string;
  /** Required `aud`, comma-separated (any of them); empty: not checked. */
  readonly jwtAudience: string;
}

/** A token longer than this is refused unread (the request headers are bounded at 8 KiB anyway). */
const MAX_TOKEN_CHARS = 8 * 1024;

/** Why a token failed, as a code; the message never quotes the token. */
function refusal(err: unknown): PgfeedError {
  if (err instanceof PgfeedError) return err;
  if (err instanceof errors.JWTExpired) return new PgfeedError('token_expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return new PgfeedError('token_not_yet_valid');
    return new PgfeedError('invalid_token', `The token's ${err.claim} claim is ${err.reason === 'missing' ? 'missing' : 'not accepted'} (${err.message}).`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new PgfeedError('invalid_token', `The token's algorithm is not accepted by this daemon (${err.message}).`);
  if (err instanceof errors.JWSSignatureVerificationFailed) return new PgfeedError('invalid_token', 'The token\'s signature does not verify with this daemon\'s key.');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return new PgfeedError('invalid_token', `No single key of the key set matches the token (${err.message}).`);
  if (err instanceof errors.JOSEError) return new PgfeedError('invalid_token', `The token is malformed (${err.message}).`);
  // jose raises TypeErrors for some shapes of garbage; anything else is still the token's fault.
  return new PgfeedError('invalid_token', 'The token is malformed.');
}

/** Verifies JWTs with the key ring's current key, and reads their grant. */
export class Verifier {
  private readonly audience?: string[];

  constructor(
    private readonly keys: KeyRing,
    private readonly settings: TokenSettings,
  ) {
    const aud = settings.jwtAudience.split(',').map((a) => a.trim()).filter(Boolean);
    this.audience = aud.length ? aud : undefined;
  }

  async verify(token: string): Promise<Grant> {
    if (token.length > MAX_TOKEN_CHARS) throw new PgfeedError('invalid_token', `The token is longer than ${MAX_TOKEN_CHARS} characters.`);
    const { key, algorithms } = this.keys.current;
    try {
      // jwtVerify has one overload per key kind; the union is either.
      const { payload } = await jwtVerify(token, key as KeyObject & JWTVerifyGetKey, {
        algorithms: [...algorithms],
        issuer: this.settings.jwtIssuer || undefined,
        audience: this.audience,
        // Every stream ends at its token's exp, and sub is what limits and revocation count.
        requiredClaims: ['exp', 'sub'],
      });
      if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 1000) {
        throw new PgfeedError('invalid_token', 'The token\'s sub claim must be a string of 1 to 1000 characters.');
      }
      const iat = typeof payload.iat === 'number' ? payload.iat * 1000 : null;
      return grantOf(payload.pgfeed, payload.sub, iat, (payload.exp as number) * 1000);
    } catch (err) {
      throw refusal(err);
    }
  }
}
