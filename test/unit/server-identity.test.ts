// Whether a read's horizon holds for the server the tail reads from
// (docs/ordering.md, "Standbys and failover").
import t from 'tap';
import type { ServerIdentity } from '../../src/interfaces.js';
import { isNewerRun, readHolds, sameRun } from '../../src/db/server-identity.js';

const primary: ServerIdentity = { system: '7714', database: 'app', timeline: 1, started: 1_000, standby: false };
const standby: ServerIdentity = { ...primary, started: 500, standby: true };

t.test('a primary read holds within one run of one timeline', async (t) => {
  t.equal(readHolds(primary, primary), 'holds');
  t.equal(readHolds({ ...primary, started: 2_000 }, primary), 'ahead', 'a crash restart the tail has not seen');
  t.equal(readHolds(primary, { ...primary, started: 2_000 }), 'stale', 'a run the tail has left');
  t.equal(readHolds({ ...primary, timeline: 2, started: 1 }, primary), 'ahead', 'a failover: the new timeline wins over an older start time');
  t.equal(readHolds(primary, { ...primary, timeline: 2, started: 1 }), 'stale');
  t.equal(readHolds({ ...primary, system: '9999' }, primary), 'ahead', 'another cluster: wait for the tail to notice');
});

t.test('a standby read holds while it follows the tail\'s system and timeline, whatever the primary\'s start time', async (t) => {
  t.equal(readHolds(standby, primary), 'holds');
  t.equal(readHolds(standby, { ...primary, started: 9_000 }), 'holds', 'the primary crash-restarted: xids below the standby\'s horizon are in its flushed WAL');
  t.equal(readHolds({ ...standby, timeline: 2 }, primary), 'stale', 'on another timeline');
  t.equal(readHolds(standby, { ...primary, timeline: 2 }), 'stale', 'the tail failed over, the standby did not follow');
  t.equal(readHolds({ ...standby, timeline: null }, primary), 'stale', 'not streaming');
  t.equal(readHolds({ ...standby, system: '9999' }, primary), 'stale', 'another cluster');
  t.equal(readHolds({ ...standby, database: 'other' }, primary), 'stale', 'another database');
  t.equal(readHolds({ ...standby, standby: false, timeline: 2 }, primary), 'ahead', 'promoted: no longer a standby read (Catchup refuses anything but holds)');
});

t.test('isNewerRun and sameRun', async (t) => {
  t.ok(isNewerRun({ ...primary, timeline: 3, started: 0 }, primary));
  t.notOk(isNewerRun(primary, primary));
  t.ok(sameRun(primary, { ...primary }));
  t.notOk(sameRun(primary, { ...primary, standby: true }));
  t.notOk(sameRun(primary, { ...primary, timeline: 2 }));
});
