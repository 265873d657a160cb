// Command-line flags of `npm run bench` and the two scales: the default
// (every scenario in a few minutes) and --full (the 10k-stream figures).

import { parseArgs } from 'node:util';

export const SCENARIOS = ['fanout', 'idle', 'catchup', 'storm', 'capture', 'resume', 'fleet', 'doorbell'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  full: boolean;
  /** fanout: one run per stream count and server. */
  streams: number[];
  projects: number;
  /** Committed events per second (all projects together). */
  rate: number;
  /** Seconds of writing per fanout run. */
  duration: number;
  scenarios: ScenarioName[];
  /** Largest fanout stream count the naive comparator is run at. */
  naiveMaxStreams: number;
  idleStreams: number;
  stormStreams: number;
  catchupBacklog: number;
  catchupStreams: number;
  catchupBehind: number;
  /** catchup's "many streams from zero at once": streams, and the events each replays. */
  catchupFromZero: { streams: number; events: number };
  /** fanout's saturation run: an offered load above what naive sustains. */
  saturation: { streams: number; projects: number; rate: number };
  /** fleet: replica counts, the totals of streams shared out among the replicas, and the writers' rate. */
  fleet: { replicas: number[]; streams: number[]; rate: number };
  /** fanout: the servers run, in this order at each stream count (pgfeed only when it is built). */
  servers: Array<'pgfeed' | 'raw' | 'naive'>;
}

const SERVERS = ['pgfeed', 'raw', 'naive'] as const;

const USAGE = `usage: npm run bench -- [--full] [--scenario fanout,idle,catchup,storm,capture,resume,fleet,doorbell]
       [--streams 10,100,1000] [--projects N] [--rate EVENTS_PER_S] [--duration SECONDS] [--replicas 1,2,4,8]
       [--servers pgfeed,raw,naive]
       [--backlog EVENTS] [--from-zero STREAMSxEVENTS]   (catchup: the replayed backlog; many streams from zero)`;

/** `--from-zero 200x50000`: streams, and the events each replays. */
function fromZero(v: string | undefined, full: boolean): { streams: number; events: number } {
  if (v === undefined) return { streams: 200, events: full ? 200_000 : 50_000 };
  const m = /^([1-9]\d*)x([1-9]\d*)$/.exec(v);
  if (!m) throw new Error(`--from-zero must be STREAMSxEVENTS such as 200x50000, got "${v}"\n${USAGE}`);
  return { streams: Number(m[1]), events: Number(m[2]) };
}

export function parseOptions(argv: string[], only?: ScenarioName): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      full: { type: 'boolean', default: false },
      streams: { type: 'string' },
      projects: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      scenario: { type: 'string' },
      replicas: { type: 'string' },
      servers: { type: 'string' },
      backlog: { type: 'string' },
      'from-zero': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const full = values.full ?? false;
  const num = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${v}"\n${USAGE}`);
    return n;
  };
  const streams = values.streams
    ? values.streams.split(',').map((s) => Math.round(num('streams', s, 0)))
    : full
      ? [10, 100, 1000, 10_000]
      : [10, 100, 1000];
  const maxStreams = Math.max(...streams);
  let scenarios: ScenarioName[] = only ? [only] : [...SCENARIOS];
  if (values.scenario) {
    scenarios = values.scenario.split(',').map((s) => {
      if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown --scenario "${s}": use ${SCENARIOS.join(', ')}`);
      return s as ScenarioName;
    });
  }
  const servers = (values.servers ?? SERVERS.join(',')).split(',').map((s) => {
    if (!(SERVERS as readonly string[]).includes(s)) throw new Error(`unknown --servers "${s}": use ${SERVERS.join(', ')}`);
    return s as (typeof SERVERS)[number];
  });
  return {
    full,
    streams,
    projects: Math.round(num('projects', values.projects, full ? 100 : 10)),
    rate: num('rate', values.rate, full ? 1000 : 200),
    duration: num('duration', values.duration, full ? 15 : 5),
    scenarios,
    naiveMaxStreams: full ? 1000 : 1000,
    idleStreams: values.streams ? maxStreams : full ? 10_000 : 2000,
    stormStreams: values.streams ? maxStreams : full ? 10_000 : 1000,
    catchupBacklog: Math.round(num('backlog', values.backlog, full ? 1_000_000 : 100_000)),
    catchupStreams: full ? 1000 : 200,
    catchupBehind: full ? 10_000 : 2000,
    catchupFromZero: fromZero(values['from-zero'], full),
    // 100 streams per project: each event is 100 deliveries.
    saturation: { streams: 1000, projects: 10, rate: full ? 2000 : 1000 },
    fleet: {
      replicas: values.replicas ? values.replicas.split(',').map((s) => Math.round(num('replicas', s, 0))) : [1, 2, 4, 8],
      // Two totals: queries per change must not move between them.
      streams: values.streams ? streams : full ? [2000, 10_000] : [500, 2000],
      // Slow enough that a replica's reads do not coalesce on this shared box:
      // the figure per replica is then the most a change costs.
      rate: values.rate ? num('rate', values.rate, 0) : 50,
    },
    servers,
  };
}
