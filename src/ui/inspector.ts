/**
 * The inspector page (/ui): one project's live events through
 * pgfeed/client, and the daemon's operator view. Every value from the
 * daemon (payloads, project and type names) reaches the page as text
 * (textContent), never as HTML; the page's CSP forbids inline script too.
 */
import { connect, type ChangeEvent, type Feed } from '../client/index.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const MAX_ROWS = 500;
/** The event rate is counted over this window. */
const RATE_WINDOW_MS = 10_000;

let feed: Feed | null = null;
/** Where a paused feed resumes: the position it had reached. */
let resumeAfter: string | null = null;
let count = 0;
const arrivals: number[] = [];
let lastAt: number | null = null;

function cell(row: HTMLTableRowElement, text: string, cls?: string): void {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

function show(ev: ChangeEvent): void {
  const body = ($<HTMLTableElement>('events')).tBodies[0];
  const row = document.createElement('tr');
  row.dataset.seq = String(ev.seq);
  cell(row, String(ev.seq));
  cell(row, ev.at);
  cell(row, ev.type);
  cell(row, ev.op ?? '');
  cell(row, ev.table ?? '');
  cell(row, JSON.stringify(ev.data), 'data');
  body.prepend(row);
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  count++;
  arrivals.push(Date.now());
  lastAt = Date.parse(ev.at);
  $('count').textContent = String(count);
}

function setState(state: string): void {
  const el = $('state');
  el.textContent = state;
  el.className = `state-${state}`;
}

function follow(after: string): void {
  feed?.close();
  const project = $<HTMLInputElement>('project').value.trim();
  const types = $<HTMLInputElement>('types').value.trim();
  const token = $<HTMLInputElement>('token').value.trim();
  try {
    feed = connect({ url: location.origin, project, after: after === '' ? 0 : after, ...(types ? { types } : {}), ...(token ? { token } : {}) });
  } catch (err) {
    setState(`error: ${(err as Error).message}`);
    return;
  }
  const f = feed;
  f.on('state', (s) => f === feed && setState(s.state === 'retrying' && s.error ? `retrying (${s.error.message})` : s.state));
  f.on('error', (e) => f === feed && setState(`ended: ${e.code}: ${e.message}`));
  f.on('event', (ev) => {
    show(ev);
    $('position').textContent = f.position ?? '-';
  });
  $<HTMLButtonElement>('pause').disabled = false;
  $('pause').textContent = 'pause';
}

$('controls').addEventListener('submit', (e) => {
  e.preventDefault();
  resumeAfter = null;
  follow($<HTMLInputElement>('after').value.trim());
});

$('pause').addEventListener('click', () => {
  if (feed && feed.state !== 'closed') {
    resumeAfter = feed.position;
    feed.close();
    feed = null;
    setState('paused by you');
    $('pause').textContent = 'resume';
  } else {
    follow(resumeAfter ?? $<HTMLInputElement>('after').value.trim());
  }
});

/** Lag (now less the newest event's commit-side time) and the rate, once a second. */
setInterval(() => {
  const now = Date.now();
  while (arrivals.length && arrivals[0] < now - RATE_WINDOW_MS) arrivals.shift();
  $('rate').textContent = `${(arrivals.length / (RATE_WINDOW_MS / 1000)).toFixed(1)}/s`;
  $('lag').textContent = lastAt === null ? '-' : `${Math.max(0, now - lastAt)} ms`;
}, 1000);

interface OperatorView {
  streams: { project: string; catching_up: number; live: number; paused: number; oldest_opened_at: string }[];
  catchup: { running: number; waiting: number };
  notify_queue_usage: number | null;
  projects: string[] | null;
  readiness: { ready: boolean; listen?: { connected: boolean }; horizon?: { held: boolean; held_ms: number; stalled: boolean; blocker: unknown }; streams?: number };
}

function term(dl: HTMLElement, name: string, value: string): void {
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = value;
  dl.append(dt, dd);
}

async function refreshOperator(): Promise<void> {
  let view: OperatorView;
  try {
    const operator = $<HTMLInputElement>('optoken').value.trim();
    const res = await fetch('/ui/api/streams', operator ? { headers: { authorization: `Bearer ${operator}` } } : {});
    if (!res.ok) return;
    view = (await res.json()) as OperatorView;
  } catch {
    return;
  }
  const health = $('health');
  health.replaceChildren();
  const r = view.readiness;
  term(health, 'ready', String(r.ready));
  term(health, 'LISTEN', r.listen?.connected ? 'connected' : 'down');
  term(health, 'horizon', r.horizon ? (r.horizon.held ? `held ${r.horizon.held_ms} ms${r.horizon.stalled ? ' (stalled)' : ''}` : 'moving') : '-');
  term(health, 'blocker', r.horizon?.blocker ? JSON.stringify(r.horizon.blocker) : 'none');
  term(health, 'catch-up', `${view.catchup.running} running, ${view.catchup.waiting} waiting`);
  term(health, 'notify queue', view.notify_queue_usage === null ? '-' : `${(view.notify_queue_usage * 100).toFixed(2)}%`);
  term(health, 'streams', String(r.streams ?? '-'));
  const filter = $<HTMLInputElement>('opfilter').value.trim();
  const body = ($<HTMLTableElement>('streams')).tBodies[0];
  body.replaceChildren();
  for (const s of view.streams.filter((x) => x.project.includes(filter))) {
    const row = body.insertRow();
    for (const v of [s.project, s.catching_up, s.live, s.paused, s.oldest_opened_at]) cell(row, String(v));
  }
  const list = $('projects');
  list.replaceChildren(
    ...(view.projects ?? []).map((p) => {
      const o = document.createElement('option');
      o.value = p;
      return o;
    }),
  );
}

void refreshOperator();
setInterval(() => void refreshOperator(), 2000);

// ?project=…&after=… opens the page on a stream.
const q = new URLSearchParams(location.search);
if (q.get('project')) {
  $<HTMLInputElement>('project').value = q.get('project')!;
  if (q.get('types')) $<HTMLInputElement>('types').value = q.get('types')!;
  if (q.get('after')) $<HTMLInputElement>('after').value = q.get('after')!;
  follow($<HTMLInputElement>('after').value.trim());
}
