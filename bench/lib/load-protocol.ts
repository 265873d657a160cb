// Messages between the load generator (parent) and its worker processes.
// Workers are child processes, not threads: each process has its own
// 20,000-descriptor limit, and a thread would share the parent's.

import type { ClientSpec } from './load-client.js';

export type WorkerRequest =
  | { id: number; cmd: 'open'; host: string; port: number; localAddresses: string[]; streams: ClientSpec[]; reconnect: boolean }
  | { id: number; cmd: 'stats'; since: number }
  | { id: number; cmd: 'measure' }
  | { id: number; cmd: 'check'; expected: Record<string, number[]> }
  | { id: number; cmd: 'close' };

export interface WorkerStats {
  streams: number;
  open: number;
  /** Open streams whose current connection was accepted at or after `since`. */
  openSince: number;
  /** Latest acceptance time (wall ms) among those. */
  lastOpenAt: number;
  deliveries: number;
  /** Wall ms of the latest delivery. */
  lastEventAt: number;
  disconnects: number;
  failures: number;
  /** Failed attempts by HTTP status, pgfeed.unavailable code or socket error, e.g. { "503": 12, "over_capacity": 4, "ECONNREFUSED": 3 }. */
  statuses: Record<string, number>;
}

export interface WorkerCheck {
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  misordered: number;
  /** Streams with at least one lost, duplicated or misordered event. */
  badStreams: number;
  /** Lost events before a stream's last received one (skipped, where the rest were only not sent yet). */
  holes: number;
  /** Up to a few of the bad streams, to tell a stream that stopped from one that skipped. */
  badExamples: BadStream[];
  histogram: string;
}

export interface BadStream {
  lost: number;
  holes: number;
  /** The expected position of the last event received in order, of `expected`. */
  last: number;
  expected: number;
  open: boolean;
  disconnects: number;
  /** Bytes the client read from its socket(s), and those its parser holds unparsed. */
  bytesIn: number;
  parserHeld: number;
}

export type WorkerReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
