// The command line itself, before any database is reached: usage with
// examples for every command, and one line and exit 2 for every usage error.
import t from 'tap';
import { oneLineError, runCli } from '../helpers/cli.js';

const COMMANDS = ['serve', 'migrate', 'track', 'untrack', 'tracked', 'emit', 'settings', 'doctor', 'tail', 'revoke'];
/** A valid invocation of each command but serve, short of the database. */
const VALID: Record<string, string[]> = {
  migrate: ['migrate'],
  track: ['track', 'orders', '--project-column', 'tenant'],
  untrack: ['untrack', 'orders'],
  tracked: ['tracked'],
  emit: ['emit', 'acme', 'deployed', '{"v":1}'],
  settings: ['settings'],
  doctor: ['doctor'],
  revoke: ['revoke', 'user:42', '--reason', 'left'],
};
/** Nothing listens there: a usage error must be found before any connection is tried. */
const NOWHERE = { DATABASE_URL: 'postgres://pgfeed@127.0.0.1:1/none' };

t.test('pgfeed --help lists every command, with examples', async (t) => {
  const r = await runCli(['--help']);
  t.equal(r.code, 0);
  for (const name of COMMANDS) t.match(r.stdout, new RegExp(`^  ${name} +\\S`, 'm'), `it lists ${name}`);
  t.match(r.stdout, /^examples:\n {2}pgfeed /m, 'it has examples');
});

for (const name of COMMANDS) {
  t.test(`pgfeed ${name} --help: its usage, options and examples`, async (t) => {
    for (const args of [[name, '--help'], ['help', name]]) {
      const r = await runCli(args);
      t.equal(r.code, 0, `${args.join(' ')}: exit 0`);
      t.equal(r.stderr, '');
      t.match(r.stdout, new RegExp(`^usage: pgfeed ${name}\\b`));
      t.match(r.stdout, new RegExp(`\nexamples:\n(  pgfeed .*\n)*  pgfeed ${name === 'serve' ? '' : `${name} `}`), 'an example of the command');
      t.equal(r.stdout.includes('--json'), name !== 'serve', `--json ${name === 'serve' ? 'is not' : 'is'} an option`);
    }
  });
}

for (const [name, args] of Object.entries(VALID)) {
  t.test(`pgfeed ${name}: usage errors are one line and exit 2`, async (t) => {
    const missing = oneLineError(t, await runCli(args), 2, /DATABASE_URL/);
    t.ok(missing.includes(`pgfeed ${name} needs DATABASE_URL`), `no DATABASE_URL: it says so (${missing})`);
    oneLineError(t, await runCli([...args, '--bogus'], NOWHERE), 2, /unknown option --bogus; see pgfeed \S+ --help/);
    oneLineError(t, await runCli([...args, '--port', '1'], NOWHERE), 2, /unknown option --port/);
    oneLineError(t, await runCli([...args, '--json=yes'], NOWHERE), 2, /--json takes no value/);
    if (name !== 'emit') oneLineError(t, await runCli([...args, 'extra'], NOWHERE), 2, /unexpected argument "extra"/);
  });
}

t.test('track: exactly one of --project-column and --project, and a table', async (t) => {
  oneLineError(t, await runCli(['track', 'orders'], NOWHERE), 2, /give exactly one of --project-column C or --project P/);
  oneLineError(t, await runCli(['track', 'orders', '--project-column', 'tenant', '--project', 'acme'], NOWHERE), 2, /give exactly one of/);
  oneLineError(t, await runCli(['track', '--project', 'acme'], NOWHERE), 2, /pgfeed track needs <table>/);
  oneLineError(t, await runCli(['track', 'orders', '--project'], NOWHERE), 2, /--project needs a value/);
  oneLineError(t, await runCli(['track', 'orders', '--project', ''], NOWHERE), 2, /--project must not be empty/);
  oneLineError(t, await runCli(['untrack'], NOWHERE), 2, /pgfeed untrack needs <table>/);
});

t.test('emit: a project, a type, and JSON data if any', async (t) => {
  oneLineError(t, await runCli(['emit', 'acme'], NOWHERE), 2, /pgfeed emit needs <type>/);
  oneLineError(t, await runCli(['emit', 'acme', 'e', '{"a":'], NOWHERE), 2, /the data is not valid JSON/);
  oneLineError(t, await runCli(['emit', 'acme', 'e', "{'a':1}"], NOWHERE), 2, /the data is not valid JSON/);
  oneLineError(t, await runCli(['emit', 'acme', 'e', '-'], NOWHERE, 20_000, 'not json\n'), 2, /the data on stdin is not valid JSON/);
  oneLineError(t, await runCli(['emit', 'acme', 'e', '-'], NOWHERE, 20_000, ''), 2, /the data on stdin is not valid JSON/);
  oneLineError(t, await runCli(['emit', 'acme', 'e', '{}', 'extra'], NOWHERE), 2, /unexpected argument "extra"/);
});

t.test('settings: a bad value is named', async (t) => {
  oneLineError(t, await runCli(['settings', '--notify', 'maybe'], NOWHERE), 2, /--notify must be true or false/);
  oneLineError(t, await runCli(['settings', '--channel', 'A-B'], NOWHERE), 2, /--channel must be a lower-case identifier/);
});

t.test('revoke: a non-empty subject, and a reason with a value', async (t) => {
  oneLineError(t, await runCli(['revoke'], NOWHERE), 2, /pgfeed revoke needs <subject>/);
  oneLineError(t, await runCli(['revoke', ''], NOWHERE), 2, /pgfeed revoke needs a non-empty <subject>/);
  oneLineError(t, await runCli(['revoke', '  '], NOWHERE), 2, /pgfeed revoke needs a non-empty <subject>/);
  oneLineError(t, await runCli(['revoke', 'user:42', '--reason'], NOWHERE), 2, /--reason needs a value/);
});

t.test('an unreachable database is one line and exit 1, naming where', async (t) => {
  for (const args of Object.values(VALID).filter((a) => a[0] !== 'migrate' && a[0] !== 'doctor')) {
    oneLineError(t, await runCli(args, NOWHERE), 1, /cannot connect to 127\.0\.0\.1:1\/none: .*ECONNREFUSED/);
  }
});
