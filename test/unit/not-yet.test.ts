// Which start-up failures mean "wait for the database" rather than "give up".
// Regression: a connection closed without an ErrorResponse (pg's "Connection
// terminated unexpectedly", no SQLSTATE), or one wrapped in migration_failed,
// ended `pgfeed serve` instead of retrying. Found by npm run test:faults.
import t from 'tap';
import { notYet } from '../../src/main.js';
import { PgfeedError } from '../../src/errors.js';

const coded = (code: string) => Object.assign(new Error('x'), { code });

t.ok(notYet(coded('ECONNREFUSED')), 'refused');
t.ok(notYet(coded('57P01')), 'terminated by an administrator');
t.ok(notYet(coded('57P03')), 'starting up');
t.ok(notYet(new Error('Connection terminated unexpectedly')), 'socket closed without a SQLSTATE');
t.ok(notYet(new PgfeedError('migration_failed', 'Migration 001 failed', { cause: coded('57P01') })), 'a migration cut off by a restart');
t.notOk(notYet(coded('42P01')), 'a missing table is a real error');
t.notOk(notYet(new PgfeedError('database_too_new', 'upgrade')), 'a too-new database is a real error');
t.notOk(notYet(new Error('Connection terminated')), 'our own end() is not an outage');
t.notOk(notYet(undefined), 'nothing');
