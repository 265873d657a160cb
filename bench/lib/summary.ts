// bench/results/summary.json: the stable keys every run writes, merged with
// the previous file so that running one scenario keeps the others' figures.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const FILE = path.join(RESULTS_DIR, 'summary.json');

export interface FanoutSummary {
  streams: number;
  projects: number;
  rate: number;
  deliveries_per_s: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  daemon_rss_mb: number;
  db_queries_per_change: number;
  lost: number;
  duplicated: number;
  misordered: number;
  raw: { deliveries_per_s: number; p99_ms: number };
  naive: { deliveries_per_s: number; p99_ms: number; db_queries_per_change: number };
  [extra: string]: unknown;
}

/** fanout's saturation run: the three servers at one stream count and offered rate. */
export interface SaturationSummary {
  streams: number;
  rate: number;
  pgfeed_deliveries_per_s: number;
  raw_deliveries_per_s: number;
  naive_deliveries_per_s: number;
  pgfeed_over_naive_deliveries: number;
}

/** Commit→client latency of pgfeed and raw at one stream count, measured side by side. */
export interface LatencyEntry {
  streams: number;
  rate: number;
  pgfeed_p50_ms: number;
  pgfeed_p99_ms: number;
  raw_p50_ms: number;
  raw_p99_ms: number;
}

export interface Summary {
  machine: string;
  when: string;
  full: boolean;
  fanout: FanoutSummary;
  idle: { streams: number; daemon_rss_mb: number; kb_per_stream: number; [extra: string]: unknown };
  catchup: {
    single_stream_events_per_s: number; reconnect_streams: number; reconnect_seconds: number; rows_read_ratio: number;
    many_from_zero: { streams: number; events_each: number; peak_rss_mb: number; events_per_s: number };
    [extra: string]: unknown;
  };
  storm: { streams: number; resume_seconds: number; lost: number; [extra: string]: unknown };
  capture: { single_row_ratio: number; bulk_ratio: number; concurrent_ratio: number; [extra: string]: unknown };
  resume: { log_rows: number; found_old_p50_ms: number; found_new_p50_ms: number; found_ratio: number; [extra: string]: unknown };
  fleet: FleetSummary;
  doorbell: { mode: string; concurrent_ratio: number; p99_ms: number; streams: number; rate: number; idle_pg_cpu_percent: number; [extra: string]: unknown };
  /** Written by fanout: one entry per stream count it ran pgfeed and raw at. */
  latency?: LatencyEntry[];
}

export interface FleetSummary {
  /** The largest replica count and the largest total of streams run. */
  replicas: number;
  streams: number;
  rate: number;
  /** Fitted at the smallest total of streams: database queries per committed change that each replica adds (the slope over replica counts). */
  queries_per_change_per_replica: number;
  /** Fitted likewise: queries per change that do not depend on the replica count (the intercept). */
  queries_per_change_fixed: number;
  /** Mean over replica counts of queries per change at the largest total of streams ÷ at the smallest: 1 when subscribers cost no queries. */
  streams_effect_ratio: number;
  /** Most database connections one replica held (query pool and LISTEN). */
  connections_per_replica: number;
  /** Largest peak RSS and mean CPU of one replica, at the largest total of streams and replica count. */
  replica_rss_mb: number;
  replica_cpu_percent: number;
  lost: number;
  duplicated: number;
  misordered: number;
  [extra: string]: unknown;
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${os.cpus().length} x ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

export function emptySummary(): Summary {
  return {
    machine: machine(),
    when: new Date().toISOString(),
    full: false,
    fanout: {
      streams: 0, projects: 0, rate: 0, deliveries_per_s: 0, p50_ms: 0, p99_ms: 0, p999_ms: 0, daemon_rss_mb: 0,
      db_queries_per_change: 0, lost: 0, duplicated: 0, misordered: 0,
      raw: { deliveries_per_s: 0, p99_ms: 0 },
      naive: { deliveries_per_s: 0, p99_ms: 0, db_queries_per_change: 0 },
    },
    idle: { streams: 0, daemon_rss_mb: 0, kb_per_stream: 0 },
    catchup: {
      single_stream_events_per_s: 0, reconnect_streams: 0, reconnect_seconds: 0, rows_read_ratio: 0,
      many_from_zero: { streams: 0, events_each: 0, peak_rss_mb: 0, events_per_s: 0 },
    },
    storm: { streams: 0, resume_seconds: 0, lost: 0 },
    capture: { single_row_ratio: 0, bulk_ratio: 0, concurrent_ratio: 0 },
    resume: { log_rows: 0, found_old_p50_ms: 0, found_new_p50_ms: 0, found_ratio: 0 },
    fleet: {
      replicas: 0, streams: 0, rate: 0, queries_per_change_per_replica: 0, queries_per_change_fixed: 0, streams_effect_ratio: 0,
      connections_per_replica: 0, replica_rss_mb: 0, replica_cpu_percent: 0, lost: 0, duplicated: 0, misordered: 0,
    },
    doorbell: { mode: '', concurrent_ratio: 0, p99_ms: 0, streams: 0, rate: 0, idle_pg_cpu_percent: 0 },
  };
}

export function loadSummary(): Summary {
  const base = emptySummary();
  if (!existsSync(FILE)) return base;
  try {
    return { ...base, ...(JSON.parse(readFileSync(FILE, 'utf8')) as Partial<Summary>) };
  } catch {
    return base;
  }
}

export function writeSummary(s: Summary): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(FILE, JSON.stringify(s, null, 2) + '\n');
  return FILE;
}

export function writeResultFile(name: string, text: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const f = path.join(RESULTS_DIR, name);
  writeFileSync(f, text);
  return f;
}

/** Rounds for display and for the JSON file alike. */
export function round(v: number, digits = 2): number {
  if (!Number.isFinite(v)) return 0;
  const m = 10 ** digits;
  return Math.round(v * m) / m;
}
