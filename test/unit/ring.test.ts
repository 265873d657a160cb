// The in-memory ring: bounded by count and by bytes, `start` moves with
// eviction, `covers` and `indexAfter` answer in delivery order.
import t from 'tap';
import { Ring } from '../../src/feed/ring.js';
import type { FeedEvent, Position } from '../../src/interfaces.js';

const ev = (xid: number, seq: number, bytes = 10): FeedEvent => ({
  pos: { xid, seq },
  project: 'p',
  type: 't',
  json: '{}',
  frame: Buffer.alloc(bytes),
});
const contents = (r: Ring) => Array.from({ length: r.size }, (_, i) => r.at(i).pos);
const START: Position = { xid: 0, seq: 0 };

t.test('empty ring', async (t) => {
  const r = new Ring(4, 1000, START);
  t.equal(r.size, 0);
  t.equal(r.length, 0);
  t.equal(r.bytes, 0);
  t.same(r.start, START);
  t.ok(r.covers(START));
  t.ok(r.covers({ xid: 5, seq: 1 }), 'anything after start is covered');
  t.equal(r.indexAfter(START), 0);
  const later = new Ring(4, 1000, { xid: 10, seq: 0 });
  t.notOk(later.covers({ xid: 9, seq: 100 }), 'a position before start is not covered');
  t.ok(later.covers({ xid: 10, seq: 0 }), 'start itself is covered');
});

t.test('eviction by count; start moves to the last evicted', async (t) => {
  const r = new Ring(3, 1_000_000, START);
  for (let i = 1; i <= 5; i++) r.push(ev(i, i * 10));
  t.equal(r.size, 3);
  t.same(contents(r), [{ xid: 3, seq: 30 }, { xid: 4, seq: 40 }, { xid: 5, seq: 50 }]);
  t.same(r.start, { xid: 2, seq: 20 }, 'start is the newest evicted event');
  t.notOk(r.covers({ xid: 1, seq: 10 }), 'before start: must read Postgres');
  t.ok(r.covers({ xid: 2, seq: 20 }), 'at start: everything after it is here');
  t.ok(r.covers({ xid: 3, seq: 30 }));
  t.equal(r.bytes, 30);
  // Wrap-around many times.
  for (let i = 6; i <= 100; i++) r.push(ev(i, i * 10));
  t.same(contents(r), [{ xid: 98, seq: 980 }, { xid: 99, seq: 990 }, { xid: 100, seq: 1000 }]);
  t.same(r.start, { xid: 97, seq: 970 });
});

t.test('eviction by bytes', async (t) => {
  const r = new Ring(100, 100, START);
  r.push(ev(1, 1, 40));
  r.push(ev(2, 2, 40));
  t.equal(r.bytes, 80);
  r.push(ev(3, 3, 40)); // 120 > 100: the oldest goes
  t.same(contents(r), [{ xid: 2, seq: 2 }, { xid: 3, seq: 3 }]);
  t.equal(r.bytes, 80);
  t.same(r.start, { xid: 1, seq: 1 });
  r.push(ev(4, 4, 100)); // alone fills the ring
  t.same(contents(r), [{ xid: 4, seq: 4 }]);
  t.equal(r.bytes, 100);
  t.same(r.start, { xid: 3, seq: 3 });
  r.push(ev(5, 5, 500)); // larger than the ring: kept alone rather than lost
  t.same(contents(r), [{ xid: 5, seq: 5 }]);
  t.equal(r.bytes, 500);
  t.same(r.start, { xid: 4, seq: 4 });
});

t.test('indexAfter: binary search in (xid, seq) order, seqs not monotonic', async (t) => {
  const r = new Ring(16, 1_000_000, START);
  // Delivery order is (xid, seq): seq 9 commits in an earlier xid than seq 3.
  const positions = [{ xid: 10, seq: 9 }, { xid: 10, seq: 12 }, { xid: 11, seq: 3 }, { xid: 12, seq: 4 }, { xid: 12, seq: 5 }, { xid: 20, seq: 1 }];
  for (const p of positions) r.push(ev(p.xid, p.seq));
  t.equal(r.indexAfter(START), 0, 'before everything');
  t.equal(r.indexAfter({ xid: 10, seq: 9 }), 1, 'strictly after an event');
  t.equal(r.indexAfter({ xid: 10, seq: 10 }), 1, 'between events of one xid');
  t.equal(r.indexAfter({ xid: 10, seq: 100 }), 2, 'after the last event of an xid');
  t.equal(r.indexAfter({ xid: 11, seq: 0 }), 2, 'a horizon position');
  t.equal(r.indexAfter({ xid: 12, seq: 4 }), 4);
  t.equal(r.indexAfter({ xid: 20, seq: 1 }), 6, 'after the last: the end');
  t.equal(r.indexAfter({ xid: 99, seq: 0 }), 6);
  // Cross-check against a linear scan for every position, also after wrapping.
  for (let i = 0; i < 13; i++) r.push(ev(30 + i, 100 - i));
  for (let x = 0; x < 50; x++) {
    for (const s of [0, 50, 95, 100, 200]) {
      const p = { xid: x, seq: s };
      let linear = 0;
      while (linear < r.size && !(r.at(linear).pos.xid > x || (r.at(linear).pos.xid === x && r.at(linear).pos.seq > s))) linear++;
      if (r.indexAfter(p) !== linear) t.fail(`indexAfter(${x}:${s}) = ${r.indexAfter(p)}, linear ${linear}`);
    }
  }
  t.pass('matches a linear scan after wrap-around');
});
