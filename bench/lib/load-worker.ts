// A load generator process: holds a share of the SSE streams and answers the
// parent over IPC. Started by load-generator.ts; not meant to be run by hand.

import * as hdr from 'hdr-histogram-js';
import { LoadClient, type ClientHooks } from './load-client.js';
import type { WorkerCheck, WorkerReply, WorkerRequest, WorkerStats } from './load-protocol.js';
import { checkStream, indexOf } from './stream-checker.js';

// Connect in waves: a burst of thousands of SYNs overflows the listen
// backlog and turns into 1 s retransmits that would pollute the figures.
const MAX_CONNECTING = 200;
/** Bad streams described one by one in a check, per worker. */
const BAD_EXAMPLES = 5;

const clients: LoadClient[] = [];
let deliveries = 0;
let lastEventAt = 0;
let histogram = newHistogram();
const statuses: Record<string, number> = {};

function newHistogram(): hdr.Histogram {
  // Microseconds, up to an hour, 3 significant digits.
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

let connecting = 0;
const queue: LoadClient[] = [];
let settled = 0;
let onSettled: (() => void) | null = null;
const firstAttemptDone = new WeakSet<LoadClient>();

function pump(): void {
  while (connecting < MAX_CONNECTING && queue.length > 0) {
    connecting++;
    queue.shift()!.connect();
  }
}

function firstAttempt(c: LoadClient): void {
  if (firstAttemptDone.has(c)) return;
  firstAttemptDone.add(c);
  connecting--;
  settled++;
  pump();
  if (settled === clients.length && onSettled) onSettled();
}

const hooks: ClientHooks = {
  onLatency(us) {
    histogram.recordValue(Math.max(1, Math.round(us)));
  },
  onEvent(atUs) {
    deliveries++;
    lastEventAt = atUs / 1000;
  },
  onOpen(c) {
    firstAttempt(c);
  },
  onFail(c, reason) {
    statuses[reason] = (statuses[reason] ?? 0) + 1;
    firstAttempt(c);
  },
};

async function handle(m: WorkerRequest): Promise<unknown> {
  switch (m.cmd) {
    case 'open': {
      const start = clients.length;
      m.streams.forEach((spec, i) => {
        const localAddress = m.localAddresses.length > 0 ? m.localAddresses[(start + i) % m.localAddresses.length] : undefined;
        const c = new LoadClient({ host: m.host, port: spec.port ?? m.port, localAddress }, spec, hooks, m.reconnect);
        clients.push(c);
        queue.push(c);
      });
      const done = new Promise<void>((resolve) => {
        onSettled = resolve;
      });
      pump();
      if (settled < clients.length) await done;
      onSettled = null;
      return { open: clients.filter((c) => c.open).length, failed: clients.filter((c) => !c.open).length };
    }
    case 'stats': {
      let open = 0;
      let openSince = 0;
      let lastOpenAt = 0;
      let disconnects = 0;
      let failures = 0;
      for (const c of clients) {
        if (c.open) {
          open++;
          if (c.openedAt >= m.since) {
            openSince++;
            if (c.openedAt > lastOpenAt) lastOpenAt = c.openedAt;
          }
        }
        disconnects += c.disconnects;
        failures += c.failures;
      }
      const s: WorkerStats = { streams: clients.length, open, openSince, lastOpenAt, deliveries, lastEventAt, disconnects, failures, statuses };
      return s;
    }
    case 'measure':
      // Start of the measured window: latency and delivery counts from here.
      histogram = newHistogram();
      deliveries = 0;
      return null;
    case 'check': {
      const r: WorkerCheck = { expected: 0, received: 0, lost: 0, duplicated: 0, misordered: 0, badStreams: 0, holes: 0, badExamples: [], histogram: '' };
      const indexes = new Map<string, Map<number, number>>();
      for (const c of clients) {
        const exp = m.expected[c.spec.project] ?? [];
        let idx = indexes.get(c.spec.project);
        if (!idx) indexes.set(c.spec.project, (idx = indexOf(exp)));
        const one = checkStream(exp, idx, c.received);
        r.expected += one.expected;
        r.received += one.received;
        r.lost += one.lost;
        r.duplicated += one.duplicated;
        r.misordered += one.misordered;
        r.holes += one.holes;
        if (one.lost + one.duplicated + one.misordered > 0) {
          r.badStreams++;
          if (r.badExamples.length < BAD_EXAMPLES) {
            r.badExamples.push({ lost: one.lost, holes: one.holes, last: one.last, expected: one.expected, open: c.open, disconnects: c.disconnects, bytesIn: c.bytesIn, parserHeld: c.parserHeld() });
          }
        }
      }
      r.histogram = hdr.encodeIntoCompressedBase64(histogram);
      return r;
    }
    case 'close':
      for (const c of clients) c.close();
      setImmediate(() => process.exit(0));
      return null;
  }
}

process.on('message', (m: WorkerRequest) => {
  handle(m).then(
    (result) => process.send!({ id: m.id, ok: true, result } satisfies WorkerReply),
    (err: unknown) => process.send!({ id: m.id, ok: false, error: String(err) } satisfies WorkerReply),
  );
});
// The parent going away must never leave thousands of sockets behind.
process.on('disconnect', () => process.exit(0));
