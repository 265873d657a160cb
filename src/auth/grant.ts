import { PgfeedError } from '../errors.js';
import { isValidTypePattern, MAX_TYPE_PATTERNS } from '../feed/type-filter.js';

/**
 * What a verified token (or a ticket minted from one) allows. Times are
 * epoch milliseconds.
 */
export interface Grant {
  /** The token's `sub`: the unit of limits, logs and revocation. */
  readonly subject: string;
  /** Exact project names, prefix globs (`acme-*`), or `*`. */
  readonly projects: readonly string[];
  /** Type patterns the token allows; null: every type. */
  readonly types: readonly string[] | null;
  /** `iat`; null when the token has none (then any revocation of the subject refuses it). */
  readonly issuedAt: number | null;
  readonly expiresAt: number;
}

const PROJECT_PATTERN = /^[^\x00-\x1f\x7f*]{1,200}\*?$|^\*$/;
const MAX_PROJECT_PATTERNS = 1_000;

const badClaim = (why: string) => new PgfeedError('invalid_token', `The token's pgfeed claim is not valid: ${why}.`);

function patterns(value: unknown, what: string, max: number, valid: (p: string) => boolean): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > max) throw badClaim(`${what} must be a list of 1 to ${max} patterns`);
  for (const p of value) if (typeof p !== 'string' || !valid(p)) throw badClaim(`${what} holds ${JSON.stringify(String(p).slice(0, 40))}, which is not a name or a prefix glob`);
  return [...new Set(value as string[])];
}

/** The `pgfeed` claim: `{"projects": [...], "types"?: [...]}`. */
export function grantOf(claim: unknown, subject: string, issuedAt: number | null, expiresAt: number): Grant {
  if (typeof claim !== 'object' || claim === null || Array.isArray(claim)) throw badClaim('it must be an object such as {"projects": ["acme"]}');
  const { projects, types, ...rest } = claim as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) throw badClaim(`it has an unknown member ${JSON.stringify(unknown[0].slice(0, 40))}`);
  const allowed = types === undefined ? null : patterns(types, 'types', MAX_TYPE_PATTERNS, isValidTypePattern);
  return {
    subject,
    projects: patterns(projects, 'projects', MAX_PROJECT_PATTERNS, (p) => PROJECT_PATTERN.test(p)),
    types: allowed === null || allowed.includes('*') ? null : allowed,
    issuedAt,
    expiresAt,
  };
}

const isGlob = (p: string) => p.endsWith('*');
const prefixOf = (p: string) => p.slice(0, -1);

/** Whether a name matches an exact name or a prefix glob. */
function matches(pattern: string, name: string): boolean {
  return isGlob(pattern) ? name.startsWith(prefixOf(pattern)) : pattern === name;
}

export function allowsProject(grant: Grant, project: string): boolean {
  return grant.projects.some((p) => matches(p, project));
}

/** The types both patterns match, as one pattern, or null when they share none. */
function intersect(a: string, b: string): string | null {
  if (!isGlob(a)) return matches(b, a) ? a : null;
  if (!isGlob(b)) return matches(a, b) ? b : null;
  // Two prefixes: the longer one, if it extends the shorter.
  if (a.startsWith(prefixOf(b))) return a;
  if (b.startsWith(prefixOf(a))) return b;
  return null;
}

/**
 * The types a stream may carry: what it asked for (empty: every type),
 * narrowed to what the grant allows. A pattern asked for that the grant
 * allows no part of is refused (403), so a typo is not a silent empty
 * stream; one it allows in part is narrowed (`types=*` under an allowlist of
 * `orders.*` streams `orders.*`). Returns [] for every type.
 */
export function narrowTypes(requested: readonly string[], allowed: readonly string[] | null): string[] {
  if (allowed === null) return [...requested];
  if (requested.length === 0) return [...allowed].sort();
  const out = new Set<string>();
  for (const r of requested) {
    const shared = allowed.map((a) => intersect(r, a)).filter((p): p is string => p !== null);
    if (shared.length === 0) throw new PgfeedError('types_forbidden', `The token does not allow the types ${JSON.stringify(r)}; it allows ${allowed.join(', ')}.`);
    for (const p of shared) out.add(p);
  }
  return [...out].sort();
}
