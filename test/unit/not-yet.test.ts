// Which start-up failures mean "wait for the database" rather than "give up".
// Regression: a connection closed without an ErrorResponse (pg's "Connection
// terminated unexpectedly", no SQLSTATE), or one wrapped in migration_failed,
// ended `pgfeed serve` instead of retrying. Found by npm run test:faults.
import t from 'tap';
import { isUnreachable as notYet } from '../../src/db/query-errors.js';
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
t.ok(notYet(coded('08006')), 'connection failure (class 08)');
t.ok(notYet(coded('57P02')), 'crash shutdown');
t.ok(notYet(new Error('timeout exceeded when trying to connect')), 'the pool could not connect in time');
t.notOk(notYet(coded('42501')), 'a missing privilege is a real error');
t.notOk(notYet(coded('42703')), 'a missing column is a real error');
t.notOk(notYet(coded('57014')), 'a cancelled statement (class 57, not 57P) is a real error');
