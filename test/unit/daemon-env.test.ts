// The bench and the fault suite start pgfeed with their own environment,
// which holds their own PGFEED_TEST_*, PGFEED_FAULTS_* and PGFEED_BENCH_*
// variables; pgfeed refuses those as unknown settings, so they are left out.
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { daemonEnv } from '../helpers/daemon-env.js';

const tools = { PGFEED_TEST_DATABASE_URL: 'postgres://x/y', PGFEED_FAULTS_SEED: '1', PGFEED_BENCH_DAEMON: '/x/cli.js', PGFEED_PORT: '9000', PATH: '/bin' };

t.throws(() => loadConfig([], tools), { code: 'invalid_config' }, 'the tools\' environment as it is would be refused');
const env = daemonEnv({ PGFEED_HOST: '::1' }, tools);
t.same(env, { PGFEED_PORT: '9000', PATH: '/bin', PGFEED_HOST: '::1' }, 'settings and other variables kept, tool variables dropped, overrides added');
t.equal(loadConfig([], env).config.port, 9000, 'and pgfeed accepts it');
