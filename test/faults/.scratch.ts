import { Cluster } from './cluster.js';
import { Replica, httpGet } from './daemon-process.js';
import { SCHEMA_SQL } from './writers.js';
import { fileURLToPath } from 'node:url';
const c = await Cluster.create();
const r = new Replica({ name: 'X', root: fileURLToPath(new URL('../../', import.meta.url)), databaseUrl: c.url, logDir: '/tmp/repro', onViolation: (w) => console.log('V', w) });
try {
  await r.start();
  await r.waitReady(10000);
  await c.query(SCHEMA_SQL);
  await c.query(`INSERT INTO fault_orders(project, writer, token) VALUES ('acme', 1, 't1')`);
  await c.query(`SELECT pgfeed.emit('acme', 'pr_x', '{"token":"t2"}')`);
  await c.query(`SELECT pgfeed.emit('acme', 'fault.tick', '{"token":"t3"}')`);
  await new Promise((res) => setTimeout(res, 1500));
  console.log(await c.query(`select seq, type from pgfeed.change_log`).then((x) => x.rows));
  for (const q of ['', '&types=fault_orders.*', '&types=fault_orders.*,pr_*', '&types=pr_*', '&types=' + encodeURIComponent('fault_orders.*,pr_*')]) {
    const res = await httpGet(`${r.url()}/v1/changes?project=acme&after=0${q}`);
    console.log(q, res.status, res.body.slice(0, 300));
  }
} finally {
  await r.close(); await c.destroy();
}
