// The verdict. Ground truth is the table itself, read after every writer has
// stopped: per project, the committed seqs in (xid, seq) order. The writers'
// ledger cross-checks that table; each client's record must equal its slice.

import { DELIVERY_ORDER } from '../helpers/change-log.js';
import type { Cluster } from '../helpers/pg-cluster.js';
import type { ClientRecord } from './clients.js';
import { identityOf, type Ledger } from './writers.js';

export interface GroundTruth {
  byProject: Map<string, number[]>;
  /** seq -> xid, to describe a misorder in the stream's own terms. */
  xidOf: Map<number, string>;
  typeOf: Map<number, string>;
  total: number;
  /** Problems with the table itself (trigger capture vs the writers' ledger). */
  problems: string[];
}

interface Row {
  seq: string;
  project: string;
  op: string | null;
  tokens: string[];
}

export async function loadGroundTruth(cluster: Cluster, ledger: Ledger, projects: readonly string[]): Promise<GroundTruth> {
  const byProject = new Map<string, number[]>();
  const xidOf = new Map<number, string>();
  const typeOf = new Map<number, string>();
  for (const p of projects) {
    const r = await cluster.query<{ seq: string; xid: string; type: string }>(
      `SELECT seq, xid::text AS xid, type FROM pgfeed.change_log WHERE project = $1 ${DELIVERY_ORDER}`, [p]);
    byProject.set(p, r.rows.map((x) => Number(x.seq)));
    for (const x of r.rows) {
      xidOf.set(Number(x.seq), x.xid);
      typeOf.set(Number(x.seq), x.type);
    }
  }
  const all = await cluster.query<Row>(
    `SELECT seq::text, project, op, coalesce(jsonb_path_query_array(data, 'strict $.**.token'), '[]'::jsonb) AS tokens
       FROM pgfeed.change_log ${DELIVERY_ORDER}`,
  );
  const problems: string[] = [];
  const found = new Map<string, { seq: string; project: string }>();
  for (const row of all.rows) {
    const id = identityOf(row.op, row.tokens);
    if (!id) {
      problems.push(`change_log seq ${row.seq} (${row.project}, op ${row.op}) carries no token: not written by this suite`);
      continue;
    }
    if (found.has(id)) problems.push(`${id} captured twice: seq ${found.get(id)!.seq} and ${row.seq}`);
    found.set(id, { seq: row.seq, project: row.project });
    if (!projects.includes(row.project)) problems.push(`seq ${row.seq} has unknown project ${row.project}`);
  }

  // Ambiguous commits: the table decides, but a transaction is atomic, so
  // it must be all there or all absent.
  for (const tx of ledger.ambiguous) {
    const present = [...tx.events.keys()].filter((id) => found.has(id));
    if (present.length === tx.events.size) ledger.commit(tx);
    else if (present.length === 0) ledger.rollback(tx);
    else problems.push(`${tx.label}: ambiguous commit is partial (${present.length} of ${tx.events.size} events in change_log)`);
  }
  ledger.ambiguous.length = 0;

  for (const [id, project] of ledger.committed) {
    const row = found.get(id);
    if (!row) problems.push(`${id} was committed (project ${project}) but is missing from change_log`);
    else if (row.project !== project) problems.push(`${id} committed for ${project} but captured as ${row.project} (seq ${row.seq})`);
  }
  for (const [id, row] of found) {
    if (ledger.rolledBack.has(id) && !ledger.committed.has(id)) problems.push(`${id} was rolled back but is in change_log as seq ${row.seq}`);
    else if (!ledger.committed.has(id)) problems.push(`${id} is in change_log (seq ${row.seq}) but no writer committed it`);
  }
  return { byProject, xidOf, typeOf, total: all.rows.length, problems };
}

export interface ClientVerdict {
  lost: number;
  duplicated: number;
  misordered: number;
  leaked: number;
  description: string[];
}

/** Length of the longest strictly increasing subsequence (patience sort). */
function lis(xs: number[]): number {
  const tails: number[] = [];
  for (const x of xs) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tails[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    tails[lo] = x;
  }
  return tails.length;
}

const show = (xs: number[], n = 8) => (xs.length > n ? `${xs.slice(0, n).join(', ')}, ... (${xs.length})` : xs.join(', '));

/** Compare one client's record with its project's committed history.
 *  misordered = events that must move for the record to be in order
 *  (record length minus its longest in-order run). */
export function checkClient(client: ClientRecord, expected: number[], xidOf: Map<number, string> = new Map()): ClientVerdict {
  const index = new Map<number, number>();
  expected.forEach((seq, i) => index.set(seq, i));
  const seen = new Set<number>();
  const dups: number[] = [];
  const phantoms: number[] = [];
  const order: number[] = [];
  for (const seq of client.seqs) {
    if (seen.has(seq)) {
      dups.push(seq);
      continue;
    }
    seen.add(seq);
    const i = index.get(seq);
    if (i === undefined) phantoms.push(seq);
    else order.push(i);
  }
  const lost = expected.filter((s) => !seen.has(s));
  const misordered = order.length - lis(order);
  const description: string[] = [];
  const filter = client.types ? `, types=${client.types.join(',')}` : '';
  const who = `${client.name} (${client.kind}, project ${client.project}${filter}, ${client.connects} connections)`;
  if (lost.length) {
    const firstLost = index.get(lost[0])!;
    description.push(`${who} lost ${lost.length} events: seqs ${show(lost)}; first lost is #${firstLost} in (xid, seq) order, after seq ${firstLost > 0 ? expected[firstLost - 1] : 'start'}`);
    // Where the gap opened: the connections that delivered its neighbours.
    const before = firstLost > 0 ? client.seqs.indexOf(expected[firstLost - 1]) : -1;
    if (before >= 0 && before + 1 < client.seqs.length) {
      const c1 = client.connOf[before];
      const c2 = client.connOf[before + 1];
      description.push(`  seq ${client.seqs[before]} (xid ${xidOf.get(client.seqs[before]) ?? '?'}) came on connection #${c1}, the next received, seq ${client.seqs[before + 1]} (xid ${xidOf.get(client.seqs[before + 1]) ?? '?'}), on #${c2}; missing seq ${lost[0]} has xid ${xidOf.get(lost[0]) ?? '?'}`);
      for (const h of client.history.filter((line) => { const n = Number(/^#(\d+)/.exec(line)?.[1]); return n >= c1 && n <= c2; }).slice(0, 4)) description.push(`  ${h}`);
    }
  }
  if (dups.length) description.push(`${who} received ${dups.length} duplicates: seqs ${show(dups)}`);
  if (misordered) {
    let at = -1;
    for (let k = 1; k < order.length; k++) if (order[k] < order[k - 1]) { at = k; break; }
    const pos = (i: number) => `seq ${expected[i]} (xid ${xidOf.get(expected[i]) ?? '?'})`;
    const around = at >= 0 ? `first inversion: ${pos(order[at - 1])} then ${pos(order[at])}, at arrival #${at}` : '';
    description.push(`${who} received ${misordered} events out of (xid, seq) order; ${around}`);
  }
  if (client.foreign.length) description.push(`${who} received ${client.foreign.length} events of other projects: ${client.foreign.slice(0, 5).map((f) => `seq ${f.seq} (${f.project})`).join(', ')}`);
  if (phantoms.length) description.push(`${who} received ${phantoms.length} events that are not committed in its project: seqs ${show(phantoms)}`);
  return { lost: lost.length, duplicated: dups.length, misordered, leaked: client.foreign.length + phantoms.length, description };
}
