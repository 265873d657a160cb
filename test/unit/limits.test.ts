// Keyed limits: one key refused, every other served, and a key forgotten as
// soon as it holds nothing (the maps must not grow with every address seen).
import t from 'tap';
import { limitKey } from '../../src/http/client-address.js';
import { KeyedLimit, KeyedRate } from '../../src/http/limits.js';

t.test('KeyedLimit: max places per key, released once, forgotten at zero', async (t) => {
  const l = new KeyedLimit(2);
  const a1 = l.acquire('a')!;
  const a2 = l.acquire('a')!;
  t.equal(l.acquire('a'), null, 'a third place of a is refused');
  t.ok(l.acquire('b'), 'b is served meanwhile');
  a1();
  a1();
  t.equal(l.count('a'), 1, 'a release counts once, however often it is called');
  t.ok(l.acquire('a'), 'a place freed is taken again');
  a2();
  const l2 = new KeyedLimit(1);
  l2.acquire('x')!();
  t.equal(l2.keys, 0, 'a key holding nothing is forgotten');
  const none = new KeyedLimit(0);
  t.ok(Array.from({ length: 1000 }, () => none.acquire('a')).every(Boolean), '0 is no limit');
  t.equal(none.keys, 0, 'and holds no state');
});

t.test('KeyedRate: bursts of perSecond, then the rate, per key; full buckets forgotten', async (t) => {
  let now = 1_000_000;
  const r = new KeyedRate(4, () => now);
  t.same([1, 2, 3, 4].map(() => r.take('a')), [0, 0, 0, 0], 'a burst of 4');
  t.equal(r.take('a'), 250, 'the fifth waits a quarter second');
  t.equal(r.take('b'), 0, 'b is served meanwhile');
  now += 250;
  t.equal(r.take('a'), 0, 'after 250 ms, one more');
  t.ok(r.take('a') > 0, 'and then none');
  now += 10_000;
  r.take('c');
  t.equal(r.keys, 1, 'a and b refilled and were dropped; only c is held');
  t.equal(new KeyedRate(0).take('a'), 0, '0 is no limit');
});

t.test('limitKey: IPv4 as is, IPv6 by its /64, IPv4-mapped as IPv4', async (t) => {
  t.equal(limitKey('10.0.0.1'), '10.0.0.1');
  t.equal(limitKey('::ffff:10.0.0.1'), '10.0.0.1');
  t.equal(limitKey('2001:db8:1:2::1'), limitKey('2001:0db8:0001:0002:ffff:0:0:9'), 'one /64');
  t.not(limitKey('2001:db8:1:2::1'), limitKey('2001:db8:1:3::1'), 'another /64');
  t.equal(limitKey('::1'), '0:0:0:0::/64');
  t.equal(limitKey('0000:0000:0000:0000:0000:0000:0000:0001'), '0:0:0:0::/64', 'the long form uWS writes');
});
