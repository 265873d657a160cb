import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** What cluster-up tells every test file: where Postgres is, and the template to clone. */
export interface ClusterState {
  readonly adminUrl: string;
  readonly template: string;
  readonly source: 'env' | 'testcontainers' | 'embedded';
  readonly keeperPid?: number;
  readonly containerId?: string;
}

const DIR = join(process.cwd(), '.tap');
const FILE = join(DIR, 'pgfeed-cluster.json');

export function writeState(state: ClusterState): void {
  mkdirSync(DIR, { recursive: true });
  writeFileSync(FILE, JSON.stringify(state, null, 2));
}

export function readState(): ClusterState {
  try {
    return JSON.parse(readFileSync(FILE, 'utf8')) as ClusterState;
  } catch (err) {
    throw new Error(`No test cluster (${FILE}). Run the tests through tap (npm test), which starts one.`, { cause: err });
  }
}

export function clearState(): void {
  rmSync(FILE, { force: true });
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + database;
  return u.toString();
}
