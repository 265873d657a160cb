// Every error code is documented, with the status it is sent with.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { ERROR_CODES } from '../../src/errors.js';
import { STATUS } from '../../src/http/status.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
/** The table rows of docs/errors.md, by the code in their first cell. */
const rows = new Map<string, string[]>();
for (const line of doc.split('\n')) {
  const m = /^\| `([a-z_]+)` \|(.*)\|$/.exec(line);
  if (m) rows.set(m[1], m[2].split('|').map((c) => c.trim()));
}

for (const code of Object.keys(ERROR_CODES) as (keyof typeof ERROR_CODES)[]) {
  t.test(code, async (t) => {
    const row = rows.get(code);
    t.ok(row, `docs/errors.md has a table row for ${code}`);
    if (!row) return;
    t.ok(row.every((cell) => cell.length > 0), 'every cell is filled in');
    const startup = ['invalid_config', 'migration_failed', 'database_too_new', 'settings_mismatch', 'row_security_mismatch', 'database_not_migrated'].includes(code);
    if (!startup) t.equal(row[0], STATUS[code].split(' ')[0], `documented with status ${STATUS[code]}`);
  });
}

t.test('no documented code is unknown to src/errors.ts', async (t) => {
  for (const code of rows.keys()) t.ok(code in ERROR_CODES, `${code} exists`);
});
