// tap `after`: drop the template and stop whatever cluster-up started.
import pg from 'pg';
import { stopScratch } from '../helpers/scratch-postgres.js';
import { clearState, readState } from './state.js';

let state;
try {
  state = readState();
} catch {
  // cluster-up failed and said why; nothing was started.
  clearState();
  process.exit(0);
}
const admin = new pg.Client({ connectionString: state.adminUrl });
try {
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${state.template} WITH (FORCE)`);
} catch {
  // The cluster may already be gone; nothing to drop then.
} finally {
  await admin.end().catch(() => {});
}
if (state.scratch) await stopScratch(state.scratch);
if (state.containerId) {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  await client.container.stop(client.container.getById(state.containerId)).catch(() => {});
}
clearState();
