// Health's transitions, from plain sources: each condition is announced when
// it begins, a partial recovery re-announces the one that still holds, and
// ok comes once when none does; re-reading unchanged sources says nothing.
import t from 'tap';
import { Health } from '../../src/feed/health.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import type { DegradedDetail } from '../../src/protocol.js';

function setup(stallMs: number) {
  const listener = { downSince: null as number | null };
  const tail = { heldSince: null as number | null, blocker: null };
  const health = new Health({ listener, tail }, stallMs, createMetrics(), createLogger('silent'));
  const told: (string | null)[] = [];
  health.onChange((s: DegradedDetail | null) => told.push(s ? s.reason : null));
  return { listener, tail, health, told };
}

t.test('onset, repeat reads, partial recovery, recovery', async (t) => {
  const { listener, tail, health, told } = setup(1_000);
  t.teardown(() => health.close());
  const now = Date.now();
  health.update(now);
  t.same(told, [], 'nothing while all is well');
  listener.downSince = now;
  health.update(now);
  health.update(now + 10);
  t.same(told, ['listen_down'], 'told once, however often it is read');
  tail.heldSince = now;
  health.update(now + 500);
  t.same(told, ['listen_down'], 'rows held for less than the stall threshold are no condition');
  health.update(now + 1_000);
  t.same(told, ['listen_down', 'horizon_stalled'], 'the stall, when it begins');
  t.same(health.conditions(now + 1_000).map((c) => c.reason), ['listen_down', 'horizon_stalled'], 'both listed, oldest first');
  listener.downSince = null;
  health.update(now + 1_100);
  t.same(told, ['listen_down', 'horizon_stalled'], 'the older ending leaves the newest standing: nothing to say');
  listener.downSince = now + 1_200;
  health.update(now + 1_200);
  t.same(told, ['listen_down', 'horizon_stalled', 'listen_down'], 'down again: the newest condition');
  listener.downSince = null;
  health.update(now + 1_300);
  t.same(told, ['listen_down', 'horizon_stalled', 'listen_down', 'horizon_stalled'], 'the newest ending re-announces the one that still holds');
  tail.heldSince = null;
  health.update(now + 1_400);
  t.same(told.at(-1), null, 'ok once none holds');
  t.same(health.conditions(), []);
  t.equal(health.current(), null);
});

t.test('a stall begins on time without any read', async (t) => {
  const { tail, health, told } = setup(50);
  t.teardown(() => health.close());
  tail.heldSince = Date.now();
  health.update();
  t.same(told, []);
  const until = Date.now() + 2_000;
  while (told.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  t.same(told, ['horizon_stalled'], 'the stall timer announced it');
});
