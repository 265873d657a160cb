import type { FeedEvent, Filter } from '../interfaces.js';

/** Type patterns: exact names, or a prefix glob ending in `*` (`pr_*`, `orders.*`). */
const PATTERN = /^[A-Za-z0-9_.:-]{1,200}\*?$|^\*$/;
export const MAX_TYPE_PATTERNS = 32;

export function isValidTypePattern(p: string): boolean {
  return PATTERN.test(p);
}

export type TypeMatcher = (type: string) => boolean;

const all: TypeMatcher = () => true;

export function typeMatcher(patterns: readonly string[]): TypeMatcher {
  if (patterns.length === 0 || patterns.includes('*')) return all;
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (type) => exact.has(type) || prefixes.some((p) => type.startsWith(p));
}

/** Whether an event passes a filter: its project, and one of its type patterns. */
export function filterMatcher(filter: Filter): (ev: FeedEvent) => boolean {
  const matches = typeMatcher(filter.types);
  return (ev) => ev.project === filter.project && matches(ev.type);
}
