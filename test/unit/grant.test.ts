// A token's grant: its pgfeed claim, the projects it allows, and how a
// stream's types are narrowed to its allowlist. The narrowing is checked
// against the definition: a type passes the result exactly when it passes
// both the request and the allowlist.
import t from 'tap';
import { PgfeedError } from '../../src/errors.js';
import { allowsProject, grantOf, narrowTypes } from '../../src/auth/grant.js';
import { typeMatcher } from '../../src/feed/type-filter.js';
import { mulberry32 } from '../helpers/random.js';

const grant = (claim: unknown) => grantOf(claim, 'alice', null, Date.now() + 60_000);
const code = (fn: () => unknown) => {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    return err instanceof PgfeedError ? err.code : String(err);
  }
};

t.test('the pgfeed claim', async (t) => {
  t.same(grant({ projects: ['acme', 'acme'] }).projects, ['acme'], 'projects, deduplicated');
  t.equal(grant({ projects: ['acme'] }).types, null, 'no types: every type');
  t.equal(grant({ projects: ['acme'], types: ['orders.*', '*'] }).types, null, '* among types: every type');
  for (const bad of [undefined, null, 'acme', ['acme'], {}, { projects: [] }, { projects: 'acme' }, { projects: [''] }, { projects: ['a*b'] }, { projects: ['a\nb'] }, { projects: [1] }, { projects: ['acme'], types: [] }, { projects: ['acme'], types: ['a b'] }, { projects: ['acme'], type: ['x'] }]) {
    t.equal(code(() => grant(bad)), 'invalid_token', `refused: ${JSON.stringify(bad)}`);
  }
});

t.test('projects: exact names, prefix globs and *', async (t) => {
  const g = grant({ projects: ['beta', 'acme-*'] });
  t.ok(allowsProject(g, 'beta') && allowsProject(g, 'acme-web') && allowsProject(g, 'acme-'), 'a name and a prefix');
  t.notOk(allowsProject(g, 'acme') || allowsProject(g, 'beta2') || allowsProject(g, 'Beta'), 'exact means exact, and the prefix includes its dash');
  t.ok(allowsProject(grant({ projects: ['*'] }), 'anything'), '* allows every project');
});

t.test('narrowTypes', async (t) => {
  t.same(narrowTypes([], null), [], 'no allowlist, no request: every type');
  t.same(narrowTypes(['a.*'], null), ['a.*'], 'no allowlist: the request');
  t.same(narrowTypes([], ['orders.*', 'pr_opened']), ['orders.*', 'pr_opened'], 'no request: the allowlist');
  t.same(narrowTypes(['o*'], ['orders.*']), ['orders.*'], 'a wider glob is narrowed');
  t.same(narrowTypes(['orders.insert.*'], ['orders.*']), ['orders.insert.*'], 'a narrower glob stays');
  t.same(narrowTypes(['orders.insert'], ['orders.*']), ['orders.insert'], 'an allowed name');
  t.same(narrowTypes(['pr_*'], ['pr_opened', 'pr_closed', 'users.x']), ['pr_closed', 'pr_opened'], 'a glob over names: the names');
  t.equal(code(() => narrowTypes(['users.*'], ['orders.*'])), 'types_forbidden', 'nothing shared: refused');
  t.equal(code(() => narrowTypes(['orders.insert', 'users.*'], ['orders.*'])), 'types_forbidden', 'one pattern with nothing shared refuses the request');

  // Against the definition, on random patterns over a small alphabet.
  const rnd = mulberry32(7);
  const word = () => Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => 'ab.'[Math.floor(rnd() * 3)]).join('');
  const pattern = () => (rnd() < 0.4 ? `${word()}*` : word());
  const names = Array.from({ length: 200 }, word);
  let checked = 0;
  let refused = 0;
  for (let i = 0; i < 2_000; i++) {
    const requested = Array.from({ length: 1 + Math.floor(rnd() * 3) }, pattern);
    const allowed = Array.from({ length: 1 + Math.floor(rnd() * 3) }, pattern);
    let narrowed: string[];
    try {
      narrowed = narrowTypes(requested, allowed);
    } catch {
      // Refused: then some requested pattern shares no name with the allowlist.
      const all = typeMatcher(allowed);
      const lonely = requested.some((r) => !names.some((n) => typeMatcher([r])(n) && all(n)));
      if (!lonely) throw new Error(`${requested} ∩ ${allowed} was refused, but every pattern shares a name`);
      refused++;
      continue;
    }
    const [req, all, out] = [typeMatcher(requested), typeMatcher(allowed), typeMatcher(narrowed)];
    for (const n of names) if (out(n) !== (req(n) && all(n))) throw new Error(`${n}: ${requested} ∩ ${allowed} gave ${narrowed}`);
    checked++;
  }
  t.ok(checked > 100, `${checked} random intersections match the definition on every name`);
  t.ok(refused > 100, `${refused} refusals each had a pattern that shares no name`);
});
