import type { Auth } from '../auth/auth.js';
import type { Feed } from '../feed/feed.js';
import type { Health } from '../feed/health.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { KeyedLimit, KeyedRate } from './limits.js';
import type { Streams } from './streams.js';

export interface Readiness {
  ready: boolean;
  [key: string]: unknown;
}

/** What the routes need from the daemon. */
export interface RouteContext {
  readonly feed: Feed;
  readonly streams: Streams;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Base of the jittered SSE `retry:` hint. */
  readonly retryMs: number;
  /** Whether /ui and its operator view are served (PGFEED_UI, and the host for auto). */
  readonly ui: boolean;
  /** Origins whose pages may read responses (PGFEED_CORS_ORIGINS). */
  readonly corsOrigins: ReadonlySet<string>;
  /** Lower-cased; '' when the peer address is the client. */
  readonly trustedProxyHeader: string;
  /** Per client address: open streams and long-polls, and new /v1 requests a second. */
  readonly perClient: { readonly streams: KeyedLimit; readonly rate: KeyedRate };
  closing(): boolean;
  readiness(): Promise<Readiness>;
  /** Whether delivery is delayed: told to streams as they open and to every poll. */
  readonly health: Pick<Health, 'current' | 'conditions'>;
  /** Present when authentication is on (any key setting given). */
  readonly auth?: Auth;
  /** The bearer token /metrics and the /readyz detail require; empty: they are open. */
  readonly operatorToken: string;
}
