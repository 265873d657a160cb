// The environment for a pgfeed process started by a tool (the bench, the
// fault suite): the tool's own, minus the tools' own variables. pgfeed
// refuses every PGFEED_ variable it does not know, and PGFEED_TEST_*,
// PGFEED_FAULTS_* and PGFEED_BENCH_* are read by the tools, never by pgfeed.

const TOOL_VARIABLES = /^PGFEED_(TEST|FAULTS|BENCH)_/;

export function daemonEnv(overrides: Record<string, string | undefined>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) if (!TOOL_VARIABLES.test(name)) env[name] = value;
  return { ...env, ...overrides };
}
