// Type patterns: exact names and literal prefix globs.
import t from 'tap';
import { isValidTypePattern, MAX_TYPE_PATTERNS, typeMatcher } from '../../src/feed/type-filter.js';

t.test('isValidTypePattern', async (t) => {
  for (const ok of ['orders.insert', 'pr_*', 'orders.*', '*', 'a', 'A-b:c_d.e', 'x'.repeat(200), 'x'.repeat(200) + '*']) t.ok(isValidTypePattern(ok), JSON.stringify(ok.slice(0, 30)));
  for (const bad of ['', '**', 'a*b', '*a', 'a**', 'a b', 'a\nb', 'a\0', 'a/b', 'a%', 'é', 'x'.repeat(201)]) t.notOk(isValidTypePattern(bad), JSON.stringify(bad.slice(0, 30)));
  t.equal(MAX_TYPE_PATTERNS, 32);
});

t.test('typeMatcher', async (t) => {
  const all = typeMatcher([]);
  t.ok(all('anything') && all(''), 'no patterns: every type');
  t.ok(typeMatcher(['a', '*'])('zzz'), '* among patterns: every type');
  const m = typeMatcher(['pr_opened', 'orders.*', 'session_*']);
  t.ok(m('pr_opened'), 'exact');
  t.notOk(m('pr_opened2'), 'exact means exact');
  t.notOk(m('pr_closed'));
  t.ok(m('orders.insert') && m('orders.') && m('orders.x.y'), 'prefix');
  t.notOk(m('orders'), 'the prefix includes the dot');
  t.ok(m('session_started'));
  const like = typeMatcher(['pr_*']);
  t.notOk(like('prXopened'), '_ is literal, not a LIKE wildcard');
  t.ok(like('pr_'), 'an empty rest matches');
  t.notOk(typeMatcher(['a.b'])('aXb'), '. is literal');
});
