// systemd/pgfeed.service stays clean under `systemd-analyze verify` and
// hardened under `systemd-analyze security` (the figure docs/systemd.md
// gives), and systemd/pgfeed.env.example names every setting.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SETTINGS } from '../../src/config.js';
import { serviceLines, UNIT } from '../helpers/unit-file.js';

const EXAMPLE = fileURLToPath(new URL('../../systemd/pgfeed.env.example', import.meta.url));
/** The most `systemd-analyze security` may score the unit (0 is best, 10 worst; 8.5 was Type=simple's). */
const MAX_EXPOSURE = 2.0;

const analyze = (...args: string[]) => spawnSync('systemd-analyze', args, { encoding: 'utf8' });
const missing = analyze('--version').error ? 'systemd-analyze is not installed (Debian: apt-get install systemd)' : false;

t.test('systemd-analyze verify reports nothing', { skip: missing }, async (t) => {
  const r = analyze('verify', UNIT);
  t.equal(r.status, 0, 'exit status 0');
  t.equal(r.stdout + r.stderr, '', 'no warning or error');
});

t.test(`systemd-analyze security scores the unit at most ${MAX_EXPOSURE}`, { skip: missing }, async (t) => {
  const r = analyze('security', '--offline=true', UNIT);
  t.equal(r.status, 0, r.stderr);
  const m = /Overall exposure level for pgfeed\.service: (\d+\.\d)/.exec(r.stdout);
  t.ok(m, 'the overall exposure is printed');
  if (!m) return;
  const score = Number(m[1]);
  t.ok(score <= MAX_EXPOSURE, `exposure ${score} <= ${MAX_EXPOSURE} (\`systemd-analyze security --offline=true systemd/pgfeed.service\` lists each line's cost)`);
});

t.test('the unit is Type=notify with a watchdog, reads /etc/pgfeed/pgfeed.env and outlasts a graceful shutdown', async (t) => {
  const unit = serviceLines();
  t.same(unit.get('Type'), ['notify']);
  t.same(unit.get('NotifyAccess'), ['all'], 'systemd-notify, a child of the daemon, may notify');
  t.match(unit.get('WatchdogSec')?.[0], /^\d+s$/);
  t.same(unit.get('EnvironmentFile'), ['/etc/pgfeed/pgfeed.env']);
  t.notOk(unit.has('MemoryDenyWriteExecute'), 'V8 needs writable and executable memory');
  const stopS = Number(/^(\d+)s$/.exec(unit.get('TimeoutStopSec')?.[0] ?? '')?.[1]);
  t.ok(stopS * 1000 > SETTINGS.shutdownTimeoutMs.default, `TimeoutStopSec (${stopS} s) leaves the graceful shutdown its ${SETTINGS.shutdownTimeoutMs.default} ms`);
});

t.test('pgfeed.env.example names every setting once, with a valid value', async (t) => {
  const named = new Map<string, string[]>();
  for (const line of readFileSync(EXAMPLE, 'utf8').split('\n')) {
    const m = /^#?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) named.set(m[1], [...(named.get(m[1]) ?? []), m[2]]);
  }
  for (const s of Object.values(SETTINGS)) {
    const values = named.get(s.env) ?? [];
    t.equal(values.length, 1, `${s.env} has one line`);
    if (values.length === 1) t.doesNotThrow(() => s.parse(values[0]), `${s.env}=${values[0]} is valid`);
  }
  const known = new Set(Object.values(SETTINGS).map((s) => s.env));
  for (const name of named.keys()) t.ok(known.has(name), `${name} is a setting`);
});
