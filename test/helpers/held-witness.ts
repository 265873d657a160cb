// The witness for "nothing was sent while rows wait behind the xmin horizon":
// /readyz reports rows held (the tail has read past them and withheld them),
// and then a heartbeat arrives on the stream. Anything published before that
// ping was written before it, on the same socket, so it has arrived too.
// The daemon needs a short PGFEED_HEARTBEAT_MS (1000, the least it takes).
import type { SseClient } from './sse-client.js';
import { getJson } from './sse-client.js';
import { waitUntil } from './wait.js';

export async function heldAndFlushed(base: string, c: SseClient): Promise<void> {
  await waitUntil(async () => (await getJson(`${base}/readyz`)).body.horizon.held === true, 10_000, 'the tail to hold rows back');
  const pings = c.pings;
  await c.waitFor((c) => c.pings > pings, 5_000, 'a heartbeat after the rows were held');
}
