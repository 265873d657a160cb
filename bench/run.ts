// `npm run bench`: every scenario, at reduced scale unless --full.

import { catchup } from './catchup.bench.js';
import { doorbell } from './doorbell.bench.js';
import { capture } from './lib/capture-scenario.js';
import { fanout } from './fanout.bench.js';
import { fleet } from './fleet.bench.js';
import { idle } from './idle.bench.js';
import { runBench } from './lib/runner.js';
import { resume } from './resume.bench.js';
import { storm } from './storm.bench.js';

await runBench([fanout, idle, catchup, storm, capture, resume, fleet, doorbell]);
