/**
 * Open streams and long-polls per token subject on this daemon, so one
 * tenant (or one leaked token) cannot take every place of PGFEED_MAX_STREAMS.
 */
export class SubjectPlaces {
  private readonly held = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Takes a place for `subject`, or returns null when it holds `max`. The release is idempotent. */
  take(subject: string): (() => void) | null {
    const n = this.held.get(subject) ?? 0;
    if (n >= this.max) return null;
    this.held.set(subject, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(subject) ?? 1) - 1;
      if (left > 0) this.held.set(subject, left);
      else this.held.delete(subject);
    };
  }
}
