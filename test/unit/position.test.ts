// Positions: (xid, seq), the delivery order.
import t from 'tap';
import { comparePositions, formatPosition, horizonPosition, isAfter, maxPosition, START } from '../../src/position.js';

t.test('START', async (t) => {
  t.same(START, { xid: 0, seq: 0 });
  t.ok(Object.isFrozen(START));
});

t.test('isAfter and comparePositions order by xid, then seq', async (t) => {
  const a = { xid: 10, seq: 900 };
  const b = { xid: 11, seq: 5 }; // a later transaction with a smaller seq
  t.ok(isAfter(b, a), 'xid first: seq is not the order');
  t.notOk(isAfter(a, b));
  t.ok(isAfter({ xid: 10, seq: 901 }, a), 'then seq within an xid');
  t.notOk(isAfter(a, a), 'strict');
  t.ok(comparePositions(a, b) < 0);
  t.ok(comparePositions(b, a) > 0);
  t.equal(comparePositions(a, { xid: 10, seq: 900 }), 0);
  t.ok(comparePositions({ xid: 10, seq: 1 }, { xid: 10, seq: 2 }) < 0);
  const sorted = [b, a, { xid: 10, seq: 1 }, START].sort(comparePositions);
  t.same(sorted, [START, { xid: 10, seq: 1 }, a, b]);
});

t.test('maxPosition', async (t) => {
  const a = { xid: 1, seq: 9 };
  const b = { xid: 2, seq: 1 };
  t.equal(maxPosition(a, b), b);
  t.equal(maxPosition(b, a), b);
  t.equal(maxPosition(a, a), a);
});

t.test('horizonPosition sorts before every row of the horizon xid and after every row below it', async (t) => {
  const h = horizonPosition(100);
  t.same(h, { xid: 100, seq: 0 });
  t.ok(isAfter({ xid: 100, seq: 1 }, h));
  t.ok(isAfter(h, { xid: 99, seq: Number.MAX_SAFE_INTEGER }));
});

t.test('formatPosition', async (t) => {
  t.equal(formatPosition({ xid: 5678, seq: 1234 }), '5678:1234');
  t.equal(formatPosition(START), '0:0');
});
