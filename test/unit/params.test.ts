// Query parsing of /v1/events and /v1/changes: every branch, no daemon.
import t from 'tap';
import { PgfeedError } from '../../src/errors.js';
import { parseCursor, parsePollParams, parseStreamParams } from '../../src/http/params.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof PgfeedError) return err.code;
    throw err;
  }
  return undefined;
}

t.test('parseStreamParams: a full query', async (t) => {
  t.same(parseStreamParams('project=acme&after=42&types=pr_*,orders.insert', undefined), {
    filter: { project: 'acme', types: ['orders.insert', 'pr_*'] },
    cursor: { kind: 'seq', seq: 42 },
    eventNames: true,
  });
  t.same(parseStreamParams('project=acme', undefined), { filter: { project: 'acme', types: [] }, cursor: { kind: 'start' }, eventNames: true }, 'after defaults to the start');
  t.same(parseStreamParams('project=a%20b%2Fc', undefined).filter.project, 'a b/c', 'the project is URL-decoded');
  t.same(parseStreamParams('project=a+b', undefined).filter.project, 'a b', '+ is a space');
  t.same(parseStreamParams('project=%C3%A9t%C3%A9', undefined).filter.project, 'été', 'UTF-8');
});

t.test('event_names: on (the default) or off, nothing else; /v1/events only', async (t) => {
  t.equal(parseStreamParams('project=a&event_names=on', undefined).eventNames, true);
  t.equal(parseStreamParams('project=a&event_names=off', undefined).eventNames, false);
  for (const bad of ['', 'OFF', 'false', '0', 'no', 'off ']) t.equal(code(() => parseStreamParams(`project=a&event_names=${encodeURIComponent(bad)}`, undefined)), 'invalid_event_names', JSON.stringify(bad));
  t.equal(code(() => parseStreamParams('project=a&event_names=on&event_names=off', undefined)), 'duplicate_parameter');
  t.equal(code(() => parsePollParams('project=a&event_names=off')), 'unknown_parameter', 'a page has no event names');
});

t.test('project', async (t) => {
  t.equal(code(() => parseStreamParams('', undefined)), 'missing_project');
  t.equal(code(() => parseStreamParams('after=0', undefined)), 'missing_project');
  t.equal(code(() => parseStreamParams('project=', undefined)), 'missing_project');
  t.equal(code(() => parseStreamParams('project', undefined)), 'missing_project', 'a bare key is empty');
  for (const bad of ['a%0d%0ab', 'a%0a', 'a%00', 'a%09b', 'a%7f', 'a%1b']) t.equal(code(() => parseStreamParams(`project=${bad}`, undefined)), 'invalid_project', bad);
  t.equal(code(() => parseStreamParams(`project=${'p'.repeat(201)}`, undefined)), 'invalid_project', '201 characters');
  t.equal(parseStreamParams(`project=${'p'.repeat(200)}`, undefined).filter.project.length, 200, '200 characters are fine');
});

t.test('parameters: unknown and duplicated', async (t) => {
  t.equal(code(() => parseStreamParams('project=a&foo=1', undefined)), 'unknown_parameter');
  t.equal(code(() => parseStreamParams('project=a&limit=1', undefined)), 'unknown_parameter', 'limit is for /v1/changes only');
  t.equal(code(() => parseStreamParams('project=a&wait=1', undefined)), 'unknown_parameter', 'wait is for /v1/changes only');
  t.equal(code(() => parseStreamParams('project=a&=x', undefined)), 'unknown_parameter', 'an empty name');
  t.equal(code(() => parseStreamParams('project=a&project=a', undefined)), 'duplicate_parameter');
  t.equal(code(() => parseStreamParams('project=a&after=1&after=1', undefined)), 'duplicate_parameter');
  t.equal(code(() => parseStreamParams('project=a&types=x&types=y', undefined)), 'duplicate_parameter');
  t.equal(code(() => parsePollParams('project=a&limit=1&limit=1')), 'duplicate_parameter');
  t.equal(code(() => parsePollParams('project=a&bar=1')), 'unknown_parameter');
  t.doesNotThrow(() => parseStreamParams('project=a&', undefined), 'a trailing & is harmless');
});

t.test('parseCursor: after', async (t) => {
  t.same(parseCursor(undefined, undefined), { kind: 'start' });
  t.same(parseCursor('0', undefined), { kind: 'start' });
  t.same(parseCursor('00', undefined), { kind: 'start' }, 'leading zeros: still 0');
  t.same(parseCursor('now', undefined), { kind: 'now' });
  t.same(parseCursor('1', undefined), { kind: 'seq', seq: 1 });
  t.same(parseCursor('007', undefined), { kind: 'seq', seq: 7 });
  t.same(parseCursor('9007199254740991', undefined), { kind: 'seq', seq: 9007199254740991 }, '2^53-1 is the largest');
  for (const bad of ['', 'abc', '-1', '1.5', '1e3', '0x10', '+1', ' 1', '1 ', 'NOW', 'Now', '9007199254740992', '99999999999999999', '99999999999999999999']) {
    t.equal(code(() => parseCursor(bad, undefined)), 'invalid_after', JSON.stringify(bad));
  }
});

t.test('parseCursor: Last-Event-ID wins over after', async (t) => {
  t.same(parseCursor('0', '42'), { kind: 'seq', seq: 42 });
  t.same(parseCursor('now', '42'), { kind: 'seq', seq: 42 });
  t.same(parseCursor('abc', '42'), { kind: 'seq', seq: 42 }, 'a bad after is not even looked at');
  t.same(parseCursor(undefined, '0'), { kind: 'start' });
  t.same(parseCursor(undefined, ' 42 '), { kind: 'seq', seq: 42 }, 'surrounding whitespace is trimmed');
  t.equal(code(() => parseCursor('5', '')), 'invalid_last_event_id', 'an empty header is refused: an EventSource leaves it out, and uWS trims \\xff to nothing');
  for (const bad of ['abc', '-1', '1.5', 'now', '99999999999999999999', '9007199254740992', '1\r\nx', '1 2', '1,2']) {
    t.equal(code(() => parseCursor('0', bad)), 'invalid_last_event_id', JSON.stringify(bad));
  }
  t.equal(code(() => parseStreamParams('project=a&after=0', 'x')), 'invalid_last_event_id', 'through parseStreamParams');
});

t.test('types', async (t) => {
  const types = (q: string) => parseStreamParams(`project=a&types=${q}`, undefined).filter.types;
  t.same(types('b,a,b'), ['a', 'b'], 'deduplicated and sorted');
  t.same(types('pr_*'), ['pr_*']);
  t.same(types('orders.insert,pr_*,x:y-z'), ['orders.insert', 'pr_*', 'x:y-z']);
  t.same(types('*'), [], '* alone means every type');
  t.same(types('a,*'), [], '* among others means every type');
  t.same(types(Array.from({ length: 32 }, (_, i) => `t${i}`).join(',')).length, 32, '32 patterns');
  for (const bad of ['', ',', 'a,', ',a', 'a%20b', 'a+b', '**', 'a*b', '*a', 'a**', 'a%0d%0ab', 'a%00', 'a/b', 'x'.repeat(201), Array.from({ length: 33 }, (_, i) => `t${i}`).join(',')]) {
    t.equal(code(() => types(bad)), 'invalid_types', JSON.stringify(bad.slice(0, 30)));
  }
  t.same(types('x'.repeat(200)), ['x'.repeat(200)], '200 characters');
  t.same(types('x'.repeat(200) + '*'), ['x'.repeat(200) + '*'], '200 characters and a *');
});

t.test('parsePollParams: limit and wait', async (t) => {
  t.same(parsePollParams('project=a'), { filter: { project: 'a', types: [] }, cursor: { kind: 'start' }, limit: 512, waitMs: 0 }, 'defaults');
  t.same(parsePollParams('project=a&after=now&limit=1&wait=30'), { filter: { project: 'a', types: [] }, cursor: { kind: 'now' }, limit: 1, waitMs: 30_000 });
  t.equal(parsePollParams('project=a&limit=512').limit, 512);
  t.equal(parsePollParams('project=a&limit=0010').limit, 10, 'leading zeros');
  t.equal(parsePollParams('project=a&wait=0').waitMs, 0);
  for (const bad of ['0', '513', 'abc', '-1', '1.5', '', '99999', ' 1']) t.equal(code(() => parsePollParams(`project=a&limit=${bad}`)), 'invalid_limit', JSON.stringify(bad));
  for (const bad of ['31', '-1', 'x', '1.5', '', '10000']) t.equal(code(() => parsePollParams(`project=a&wait=${bad}`)), 'invalid_wait', JSON.stringify(bad));
  t.equal(code(() => parsePollParams('project=a&after=-1')), 'invalid_after');
  t.equal(code(() => parsePollParams('after=0')), 'missing_project');
});
