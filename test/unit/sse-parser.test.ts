// The one SSE parser (src/client/sse-parser.ts), by the WHATWG rules, fed
// the way a socket feeds it: in chunks that split lines, CRLFs and UTF-8.
import t from 'tap';
import { SseParser, type SseEvent } from '../../src/client/sse-parser.js';

function parse(chunks: readonly (string | Uint8Array)[]) {
  const events: SseEvent[] = [];
  const retries: number[] = [];
  let comments = 0;
  const p = new SseParser({ onEvent: (e) => events.push(e), onRetry: (ms) => retries.push(ms), onComment: () => comments++ });
  for (const c of chunks) p.push(c);
  return { events, retries, comments, parser: p };
}

/** Every split of `text` into two chunks, as bytes. */
function everySplit(text: string): Uint8Array[][] {
  const bytes = new TextEncoder().encode(text);
  return Array.from({ length: bytes.length + 1 }, (_, i) => [bytes.slice(0, i), bytes.slice(i)]);
}

t.test('CRLF, LF and CR line ends, split anywhere across chunks, give the same events', async (t) => {
  const want = [
    { id: '1', event: 'orders.insert', data: '{"a":1}' },
    { id: null, event: 'message', data: 'two\nlines' },
  ];
  for (const eol of ['\r\n', '\n', '\r']) {
    const text = `id: 1${eol}event: orders.insert${eol}data: {"a":1}${eol}${eol}data: two${eol}data:lines${eol}${eol}`;
    for (const chunks of everySplit(text)) {
      const got = parse(chunks).events;
      if (JSON.stringify(got) !== JSON.stringify(want)) t.fail(`${JSON.stringify(eol)} split at ${chunks[0].length}: ${JSON.stringify(got)}`);
    }
    t.pass(`${JSON.stringify(eol)}: every split of ${text.length} bytes`);
  }
  // A CR ending one chunk and the LF opening the next are one line end, not two (which would dispatch an empty line early).
  const { events } = parse(['data: a\r', '\ndata: b\r\n\r\n']);
  t.same(events, [{ id: null, event: 'message', data: 'a\nb' }], 'a CRLF split between chunks is one line end');
});

t.test('a UTF-8 character split across chunks is decoded whole', async (t) => {
  for (const chunks of everySplit('data: {"name":"été ✓ 🚀"}\n\n')) {
    const { events } = parse(chunks);
    if (events.length !== 1 || events[0].data !== '{"name":"été ✓ 🚀"}') t.fail(`split at ${chunks[0].length}: ${JSON.stringify(events)}`);
  }
  t.pass('every split decodes');
});

t.test('comments are counted and dispatch nothing; retry takes only digits', async (t) => {
  const r = parse([': ping\n\n', 'retry: 2731\n\n', 'retry: 12x\n\n', 'retry:500\n', ':\n', 'data: x\n\n']);
  t.equal(r.comments, 2);
  t.same(r.retries, [2731, 500], 'retry: 12x is ignored');
  t.equal(r.parser.retry, 500);
  t.same(r.events, [{ id: null, event: 'message', data: 'x' }], 'only the frame with data is dispatched');
});

t.test('id: persists as lastId, a control event has none of its own; a NUL id is ignored', async (t) => {
  const r = parse(['id: 7\ndata: a\n\n', 'event: pgfeed.unavailable\ndata: {}\n\n', 'id: 8\0\ndata: b\n\n']);
  t.same(r.events.map((e) => e.id), ['7', null, null]);
  t.equal(r.parser.lastId, '7');
});

t.test('field rules: no space, one space stripped, empty data, unknown fields, a cut-off frame', async (t) => {
  const r = parse(['data:no-space\n\n', 'data:  two spaces\n\n', 'data\n\n', 'foo: bar\ndata: y\n\n', 'id: 9\ndata: cut off']);
  t.same(r.events.map((e) => e.data), ['no-space', ' two spaces', '', 'y']);
  t.equal(r.parser.fieldsSeen, 6, 'the unknown field counts; a line without its end is not a line yet');
  t.equal(r.parser.lastId, null, 'a frame without its blank line is never dispatched');
});

t.test('a handler that throws does not get the same frame again', async (t) => {
  const seen: string[] = [];
  const p = new SseParser({
    onEvent: (e) => {
      seen.push(e.data);
      if (e.data === 'a') throw new Error('boom');
    },
  });
  t.throws(() => p.push('data: a\n\n'), /boom/);
  p.push('data: b\n\n');
  t.same(seen, ['a', 'b'], 'the frame that threw is not dispatched twice');
});
