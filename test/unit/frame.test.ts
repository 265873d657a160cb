// SSE frames: encoded once per event, and nothing in an event can break one.
import t from 'tap';
import { controlFrame, encodeEvent, PING_FRAME, retryFrame, unnamedParts } from '../../src/feed/frame.js';
import { sanitizeEventName, sseEvent } from '../../src/protocol.js';
import type { ChangeRow } from '../../src/interfaces.js';

const row = (over: Partial<ChangeRow> = {}): ChangeRow => ({
  seq: 1234,
  xid: 5678,
  project: 'acme',
  type: 'orders.insert',
  op: 'insert',
  tbl: 'public.orders',
  data: '{"id": 1, "note": "a\\nb"}',
  at: '2026-11-22T10:00:00.123Z',
  ...over,
});

/** Splits a frame into its lines; a frame ends with one blank line. */
function lines(frame: Buffer): string[] {
  const text = frame.toString('utf8');
  if (!text.endsWith('\n\n') || text.endsWith('\n\n\n')) throw new Error(`a frame must end with exactly one blank line: ${JSON.stringify(text)}`);
  return text.slice(0, -2).split('\n');
}

t.test('sanitizeEventName strips CR, LF and NUL', async (t) => {
  t.equal(sanitizeEventName('orders.insert'), 'orders.insert');
  t.equal(sanitizeEventName('a\rb'), 'a_b');
  t.equal(sanitizeEventName('a\nb'), 'a_b');
  t.equal(sanitizeEventName('a\0b'), 'a_b');
  t.equal(sanitizeEventName('\r\n\0'), '___');
  t.notMatch(sanitizeEventName('x\r\ndata: evil\n\nid: 1'), /[\r\n\0]/);
  t.equal(sanitizeEventName('été: ok'), 'été: ok', 'anything else is kept');
});

t.test('encodeEvent: id, event and data lines with valid JSON', async (t) => {
  const ev = encodeEvent(row());
  t.same(lines(ev.frame), [
    'id: 1234',
    'event: orders.insert',
    `data: ${ev.json}`,
  ]);
  const json = JSON.parse(ev.json);
  t.same(json, {
    seq: 1234,
    xid: '5678',
    project: 'acme',
    type: 'orders.insert',
    op: 'insert',
    table: 'public.orders',
    data: { id: 1, note: 'a\nb' },
    at: '2026-11-22T10:00:00.123Z',
  });
  t.same(ev.pos, { xid: 5678, seq: 1234 });
  t.equal(ev.project, 'acme');
  t.equal(ev.type, 'orders.insert');
});

t.test('encodeEvent: emitted events have null op, table and possibly data', async (t) => {
  const ev = encodeEvent(row({ type: 'pr_opened', op: null, tbl: null, data: null }));
  t.match(JSON.parse(ev.json), { type: 'pr_opened', op: null, table: null, data: null });
  t.equal(lines(ev.frame)[1], 'event: pr_opened');
});

t.test('a type or project with newlines cannot break the frame', async (t) => {
  const evil = 'x\r\ndata: {"forged":true}\n\nid: 999\nevent: y\0';
  const ev = encodeEvent(row({ type: evil, project: 'p\nq' }));
  const ls = lines(ev.frame);
  t.equal(ls.length, 3, 'still exactly three lines');
  t.equal(ls[0], 'id: 1234');
  t.match(ls[1], /^event: x__data: \{"forged":true\}__id: 999_event: y_$/);
  t.match(ls[2], /^data: /);
  const json = JSON.parse(ls[2].slice('data: '.length));
  t.equal(json.type, evil, 'the JSON keeps the real type, escaped');
  t.equal(json.project, 'p\nq');
  t.notOk(ev.frame.includes('\r'), 'no CR anywhere in the frame');
  t.notOk(ev.frame.includes(0), 'no NUL anywhere in the frame');
});

t.test('control, retry and ping frames', async (t) => {
  const c = controlFrame('pgfeed.unavailable', { code: 'over_capacity', message: 'x\ny' });
  t.same(lines(c), ['event: pgfeed.unavailable', 'data: {"type":"pgfeed.unavailable","code":"over_capacity","message":"x\\ny"}'], 'no id: a control event never moves the cursor');
  t.same(lines(Buffer.from(sseEvent({ event: 'pgfeed.reset\n', data: '{}' }))), ['event: pgfeed.reset_', 'data: {}'], 'a control event name is sanitised like any other');
  for (let i = 0; i < 50; i++) {
    const m = /^retry: (\d+)\n\n$/.exec(retryFrame(2000).toString());
    t.ok(m && Number(m[1]) >= 2000 && Number(m[1]) <= 4000, 'retry is jittered within [base, 2 × base]');
  }
  t.equal(PING_FRAME.toString(), ': ping\n\n');
});

t.test('unnamedParts: the frame without its event line, for event_names=off', async (t) => {
  const ev = encodeEvent(row({ type: 'odd\ntype' }));
  t.same(lines(Buffer.concat(unnamedParts(ev.frame))), ['id: 1234', `data: ${ev.json}`]);
});
