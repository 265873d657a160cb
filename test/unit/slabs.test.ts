// Frames joined into slabs: bounded by SLAB_BYTES, in order, filtered,
// stopped by backpressure, and shared per list.
import t from 'tap';
import { eachSlab, slabsOf, SLAB_BYTES, type Slab } from '../../src/feed/slabs.js';
import type { FeedEvent } from '../../src/interfaces.js';

const ev = (seq: number, bytes: number, type = 't'): FeedEvent => ({
  pos: { xid: 1, seq },
  project: 'p',
  type,
  json: '{}',
  frame: Buffer.alloc(bytes, seq % 256),
});

t.test('slabs stay within SLAB_BYTES and carry every frame once, in order', async (t) => {
  const events = Array.from({ length: 1000 }, (_, i) => ev(i + 1, 300));
  const slabs: Slab[] = [];
  const sent = eachSlab(events, 0, () => true, (s) => (slabs.push(s), true));
  t.equal(sent, 1000);
  t.ok(slabs.length > 1, 'more than one slab for 300 KB of frames');
  for (const s of slabs) t.ok(s.buf.length <= SLAB_BYTES, `slab of ${s.buf.length} bytes`);
  t.same(Buffer.concat(slabs.map((s) => s.buf)), Buffer.concat(events.map((e) => e.frame)), 'the bytes are the frames, in order');
  t.equal(slabs[0].start, 0);
  for (let i = 1; i < slabs.length; i++) t.equal(slabs[i].start, slabs[i - 1].end, 'slabs are contiguous');
  t.equal(slabs.at(-1)!.end, 1000);
  t.same(slabs.at(-1)!.last, { xid: 1, seq: 1000 });
});

t.test('a frame larger than a slab is a slab of its own', async (t) => {
  const events = [ev(1, 10), ev(2, SLAB_BYTES * 2), ev(3, 10)];
  const slabs: Slab[] = [];
  eachSlab(events, 0, () => true, (s) => (slabs.push(s), true));
  t.same(slabs.map((s) => s.buf.length), [10, SLAB_BYTES * 2, 10]);
});

t.test('filtered events are left out; from skips the events before it', async (t) => {
  const events = Array.from({ length: 10 }, (_, i) => ev(i + 1, 5, i % 2 ? 'odd' : 'even'));
  const slabs: Slab[] = [];
  const sent = eachSlab(events, 4, (e) => e.type === 'odd', (s) => (slabs.push(s), true));
  t.equal(sent, 3, 'seqs 6, 8 and 10');
  t.equal(slabs.length, 1);
  t.same(slabs[0].buf, Buffer.concat([events[5].frame, events[7].frame, events[9].frame]));
  t.same(slabs[0].last, { xid: 1, seq: 10 });
});

t.test('emit returning false stops after that slab', async (t) => {
  const events = Array.from({ length: 1000 }, (_, i) => ev(i + 1, 300));
  const slabs: Slab[] = [];
  const sent = eachSlab(events, 0, () => true, (s) => (slabs.push(s), false));
  t.equal(slabs.length, 1, 'one slab, then stop');
  t.equal(sent, slabs[0].end, 'counts the events of the written slab only');
  t.ok(sent < 1000);
});

t.test('nothing to send emits nothing', async (t) => {
  let calls = 0;
  t.equal(eachSlab([ev(1, 5)], 1, () => true, () => (calls++, true)), 0);
  t.equal(eachSlab([ev(1, 5)], 0, () => false, () => (calls++, true)), 0);
  t.equal(calls, 0);
});

t.test('slabsOf builds a list’s slabs once and shares them', async (t) => {
  const events = Array.from({ length: 600 }, (_, i) => ev(i + 1, 300));
  const a = slabsOf(events);
  t.equal(slabsOf(events), a, 'the same slabs for the same list');
  t.not(slabsOf([...events]), a, 'another list gets its own');
  t.equal(a.reduce((n, s) => n + s.end - s.start, 0), 600);
});

t.test('unnamed slabs (event_names=off): the frames without their event lines, cached apart from the named ones', async (t) => {
  const events = Array.from({ length: 500 }, (_, i) => {
    const seq = i + 1;
    return { ...ev(seq, 0), frame: Buffer.from(`id: ${seq}\nevent: t.${seq}\ndata: {"seq":${seq},"pad":"${'x'.repeat(200)}"}\n\n`) };
  });
  const unnamed = slabsOf(events, false);
  const text = Buffer.concat(unnamed.map((s) => s.buf)).toString();
  t.equal(text, events.map((e) => e.frame.toString().replace(/^event: .*\n/m, '')).join(''), 'every frame, in order, without its event line');
  for (const s of unnamed) t.ok(s.buf.length <= SLAB_BYTES, `slab of ${s.buf.length} bytes`);
  t.equal(slabsOf(events, false), unnamed, 'built once per list');
  t.not(slabsOf(events, true), unnamed, 'the named slabs are another set');
  t.same(Buffer.concat(slabsOf(events, true).map((s) => s.buf)), Buffer.concat(events.map((e) => e.frame)), 'which keep the event lines');
});
