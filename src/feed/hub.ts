import type { FeedEvent } from '../interfaces.js';
import { wallClockMs } from '../wall-clock.js';

/** Something that wants a project's new events as the tail reads them. */
export interface Receiver {
  readonly project: string;
  receive(events: readonly FeedEvent[]): void;
  /** The tail's pushes have a gap (retention removed rows before the tail read them): check from your own position. */
  rewind?(): void;
}

/**
 * Pushes the tail's new events to the receivers of their project only, so an
 * event costs work in proportion to its own project's audience.
 */
export class Hub {
  private readonly byProject = new Map<string, Set<Receiver>>();

  add(r: Receiver): void {
    let set = this.byProject.get(r.project);
    if (!set) this.byProject.set(r.project, (set = new Set()));
    set.add(r);
  }

  remove(r: Receiver): void {
    const set = this.byProject.get(r.project);
    if (!set) return;
    set.delete(r);
    if (set.size === 0) this.byProject.delete(r.project);
  }

  /**
   * `events` are in delivery order; each receiver gets its project's slice,
   * still in order. Returns when (wallClockMs) the events were grouped and
   * the receivers' writes began, for the tail's step timings.
   */
  publish(events: readonly FeedEvent[]): number {
    if (events.length === 0 || this.byProject.size === 0) return wallClockMs();
    const groups = new Map<string, FeedEvent[]>();
    for (const ev of events) {
      if (!this.byProject.has(ev.project)) continue;
      let g = groups.get(ev.project);
      if (!g) groups.set(ev.project, (g = []));
      g.push(ev);
    }
    const routed = wallClockMs();
    for (const [project, group] of groups) {
      // Copy: a receiver may remove itself (or others) while receiving.
      for (const r of [...this.byProject.get(project)!]) r.receive(group);
    }
    return routed;
  }

  /** Tells every receiver that the pushes so far do not cover what the tail skipped. */
  rewind(): void {
    for (const set of [...this.byProject.values()]) for (const r of [...set]) r.rewind?.();
  }

  get size(): number {
    let n = 0;
    for (const s of this.byProject.values()) n += s.size;
    return n;
  }
}
