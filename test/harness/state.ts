import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterSpec } from '../../src/db/cluster.js';

/** What cluster-up tells every test file: where Postgres is, and the template to clone. */
export interface ClusterState {
  readonly adminUrl: string;
  readonly template: string;
  readonly source: 'env' | 'testcontainers' | 'embedded';
  /** The embedded cluster cluster-up started, for cluster-down to stop. */
  readonly scratch?: ClusterSpec;
  readonly containerId?: string;
}

const DIR = join(process.cwd(), '.tap');
const FILE = join(DIR, 'pgfeed-cluster.json');

/** Written instead when cluster-up failed, so that every test file fails with the cause. */
interface HarnessFailure {
  readonly error: string;
}

export function writeState(state: ClusterState | HarnessFailure): void {
  mkdirSync(DIR, { recursive: true });
  writeFileSync(FILE, JSON.stringify(state, null, 2));
}

export function readState(): ClusterState {
  let state: ClusterState | HarnessFailure;
  try {
    state = JSON.parse(readFileSync(FILE, 'utf8')) as ClusterState | HarnessFailure;
  } catch (err) {
    throw new Error(`No test cluster (${FILE}). Run the tests through tap (npm test), which starts one.`, { cause: err });
  }
  if ('error' in state) throw new Error(`The test cluster did not start: ${state.error}`);
  return state;
}

export function clearState(): void {
  rmSync(FILE, { force: true });
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + database;
  return u.toString();
}
