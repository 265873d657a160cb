import client from 'prom-client';

/** The daemon's metrics, in one registry per daemon (tests run several). */
export function createMetrics() {
  const registry = new client.Registry();
  let readNotifyQueue: (() => Promise<number>) | null = null;
  let readCatchupHeld: (() => number) | null = null;
  // Unprefixed: dashboards for Node services expect process_* and nodejs_*.
  client.collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    subscribers: new client.Gauge({ name: 'pgfeed_subscribers', help: 'Open SSE streams by state', labelNames: ['state'] as const, registers: [registry] }),
    polls: new client.Gauge({ name: 'pgfeed_long_polls', help: 'Open /v1/changes long-polls', registers: [registry] }),
    delivered: new client.Counter({ name: 'pgfeed_events_delivered_total', help: 'Events written to SSE streams and poll responses', registers: [registry] }),
    queries: new client.Counter({ name: 'pgfeed_db_queries_total', help: 'Database queries by kind', labelNames: ['kind'] as const, registers: [registry] }),
    catchupShared: new client.Counter({ name: 'pgfeed_catchup_shared_total', help: 'Catch-up reads served by a query already in flight', registers: [registry] }),
    catchupQueued: new client.Counter({ name: 'pgfeed_catchup_queued_total', help: 'Catch-up reads that waited for a free slot', registers: [registry] }),
    catchupWaiting: new client.Gauge({ name: 'pgfeed_catchup_waiting', help: 'Catch-up reads waiting for a free slot', registers: [registry] }),
    wakeups: new client.Counter({ name: 'pgfeed_notify_wakeups_total', help: 'NOTIFY doorbells received', registers: [registry] }),
    tailEvents: new client.Counter({ name: 'pgfeed_tail_events_total', help: 'Events read by the shared tail', registers: [registry] }),
    tailLag: new client.Gauge({ name: 'pgfeed_tail_lag_seconds', help: 'Age of the newest event the tail has read, at the time it read it', registers: [registry] }),
    horizonAge: new client.Gauge({ name: 'pgfeed_horizon_age_seconds', help: 'How long committed rows have waited behind the xmin horizon (0 when none wait)', registers: [registry] }),
    // A pid is an identifier, not a quantity: it is named in /readyz and the log.
    horizonBlocked: new client.Gauge({ name: 'pgfeed_horizon_blocked', help: '1 while committed rows wait behind the xmin horizon, else 0', registers: [registry] }),
    ringEvents: new client.Gauge({ name: 'pgfeed_ring_events', help: 'Events in the in-memory ring', registers: [registry] }),
    ringBytes: new client.Gauge({ name: 'pgfeed_ring_bytes', help: 'Frame bytes in the in-memory ring', registers: [registry] }),
    listening: new client.Gauge({ name: 'pgfeed_listen_connected', help: '1 while the LISTEN connection is up', registers: [registry] }),
    slowClosed: new client.Counter({ name: 'pgfeed_slow_streams_closed_total', help: 'Streams closed after making no progress for the slow-client timeout', registers: [registry] }),
    queryFailures: new client.Counter({ name: 'pgfeed_query_failures_total', help: 'Failed queries of the read path, by query and cause (unreachable: the database; other: a fault retrying cannot mend)', labelNames: ['query', 'cause'] as const, registers: [registry] }),
    rejected: new client.Counter({ name: 'pgfeed_requests_rejected_total', help: 'Requests answered with an error, by code', labelNames: ['code'] as const, registers: [registry] }),
    streamsReset: new client.Counter({ name: 'pgfeed_streams_reset_total', help: 'Streams and polls told pgfeed.reset: retention removed events they still needed', registers: [registry] }),
    prunedRows: new client.Counter({ name: 'pgfeed_pruned_rows_total', help: 'change_log rows this daemon pruned', registers: [registry] }),
    pruneSeconds: new client.Histogram({ name: 'pgfeed_prune_step_seconds', help: 'Duration of one pruning step (one transaction)', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] }),
    tailGaps: new client.Counter({ name: 'pgfeed_tail_pruned_gaps_total', help: 'Times retention removed rows before the shared tail read them; live streams then re-read from their own position', registers: [registry] }),
    // Read when scraped: one cheap query per scrape, none between scrapes.
    notifyQueue: new client.Gauge({
      name: 'pgfeed_notify_queue_usage',
      help: 'Fraction of the cluster-wide NOTIFY queue in use (pg_notification_queue_usage()), read at each scrape; NaN when it could not be read',
      registers: [registry],
      async collect() {
        if (readNotifyQueue) this.set(await readNotifyQueue());
      },
    }),
    degraded: new client.Gauge({ name: 'pgfeed_degraded', help: '1 while delivery is degraded for this reason (listen_down, horizon_stalled), as pgfeed.degraded reports it, else 0', labelNames: ['reason'] as const, registers: [registry] }),
    catchupReads: new client.Counter({ name: 'pgfeed_catchup_reads_total', help: 'Catch-up queries by the server that answered them: primary, or a standby of PGFEED_READ_URL (host:port/database)', labelNames: ['server'] as const, registers: [registry] }),
    standbyFallbacks: new client.Counter({ name: 'pgfeed_standby_fallbacks_total', help: 'Catch-up reads the primary answered although standbys are configured, by reason (behind, unavailable, failed, untrusted)', labelNames: ['reason'] as const, registers: [registry] }),
    standbyStreaming: new client.Gauge({ name: 'pgfeed_standby_streaming', help: '1 while a standby of PGFEED_READ_URL streams the primary\'s timeline and takes catch-up reads, else 0', labelNames: ['standby'] as const, registers: [registry] }),
    wakePollChanges: new client.Counter({ name: 'pgfeed_wake_poll_changes_total', help: 'Moves of the WAL insert position the wake poll saw (PGFEED_WAKE=poll), each waking the tail', registers: [registry] }),
    wakePollSkipped: new client.Counter({ name: 'pgfeed_wake_poll_skipped_total', help: 'Wake poll intervals that woke the tail without a probe, because its last read found rows (PGFEED_WAKE=poll)', registers: [registry] }),
    wakePollConnected: new client.Gauge({ name: 'pgfeed_wake_poll_connected', help: '1 while the wake poll\'s connection is up (PGFEED_WAKE=poll), else 0', registers: [registry] }),
    deliverySteps: new client.Histogram({
      name: 'pgfeed_delivery_step_seconds',
      help: 'Time of each step from a write to the sockets, once per tail read that delivered rows: notify, wait, read, encode, hub, write, and total (docs/http.md)',
      labelNames: ['step'] as const,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    /** Where the notify-queue gauge reads at each scrape; the reader must not throw. */
    readNotifyQueueWith(read: () => Promise<number>): void {
      readNotifyQueue = read;
    },
    // Summed over the open streams at each scrape: nothing is counted between scrapes.
    catchupHeld: new client.Gauge({
      name: 'pgfeed_catchup_held_bytes',
      help: 'Bytes of frames the open streams hold while catching up: read from Postgres and not yet sent (each stream at most PGFEED_CATCHUP_STREAM_BYTES)',
      registers: [registry],
      collect() {
        if (readCatchupHeld) this.set(readCatchupHeld());
      },
    }),
    /** Where the held-bytes gauge reads at each scrape. */
    readCatchupHeldWith(read: () => number): void {
      readCatchupHeld = read;
    },
  };
  for (const state of ['catching_up', 'live', 'paused']) m.subscribers.set({ state }, 0);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
