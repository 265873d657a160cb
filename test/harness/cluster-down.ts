// tap `after`: drop the template and stop whatever cluster-up started.
import pg from 'pg';
import { clearState, readState } from './state.js';

const state = readState();
const admin = new pg.Client({ connectionString: state.adminUrl });
try {
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${state.template} WITH (FORCE)`);
} catch {
  // The cluster may already be gone; nothing to drop then.
} finally {
  await admin.end().catch(() => {});
}
if (state.keeperPid) {
  try {
    process.kill(state.keeperPid, 'SIGTERM');
  } catch {
    // Already stopped.
  }
}
if (state.containerId) {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  await client.container.stop(client.container.getById(state.containerId)).catch(() => {});
}
clearState();
