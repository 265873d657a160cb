// CPU% and RSS of a server process, read from /proc like top does.

import { readFileSync } from 'node:fs';

// USER_HZ: 100 on every Linux platform Node supports.
const TICKS_PER_S = 100;

export interface ProcSample {
  at: number;
  cpuTicks: number;
  rssKb: number;
}

export function sampleProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" of the command name, which may itself hold spaces.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return { at: performance.now(), cpuTicks: utime + stime, rssKb: m ? Number(m[1]) : 0 };
}

/** CPU use between two samples, in % of one core. */
export function cpuPercent(a: ProcSample, b: ProcSample): number {
  const s = (b.at - a.at) / 1000;
  return s > 0 ? ((b.cpuTicks - a.cpuTicks) / TICKS_PER_S / s) * 100 : 0;
}

/** Samples a process on an interval and keeps the peak RSS. */
export class ProcMonitor {
  private first: ProcSample;
  private last: ProcSample;
  peakRssKb: number;
  private timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.first = this.last = sampleProc(pid);
    this.peakRssKb = this.first.rssKb;
    this.timer = setInterval(() => this.tick(), 250);
  }

  private tick(): void {
    try {
      this.last = sampleProc(this.pid);
      this.peakRssKb = Math.max(this.peakRssKb, this.last.rssKb);
    } catch {
      // The process exited; keep the last sample.
    }
  }

  result(): { cpuPercent: number; rssMb: number; peakRssMb: number } {
    this.tick();
    return { cpuPercent: cpuPercent(this.first, this.last), rssMb: this.last.rssKb / 1024, peakRssMb: this.peakRssKb / 1024 };
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/**
 * CPU time a process has run, in ms, from /proc/<pid>/schedstat: the
 * scheduler's nanosecond count, for a mostly idle process whose few ms a
 * second the 10 ms ticks of /proc/<pid>/stat would round away.
 */
export function runMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}
