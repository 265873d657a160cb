import { defineCommand, usage } from './command.js';
import { needDatabase, whereTo, withDatabase } from './database.js';

export const revokeCommand = defineCommand(
  {
    name: 'revoke',
    summary: "end a subject's open streams on every daemon and refuse its tokens issued before now",
    about:
      "The same as SELECT pgfeed.revoke(subject, reason): the subject is a token's sub claim. Every daemon ends that subject's streams within a second, each with pgfeed.revoked and the reason, and answers its older tokens 401 token_revoked; tokens issued later are accepted. Prints the revocation time (RFC 3339).",
    args: ['subject'],
    settings: ['databaseUrl'],
    flags: { reason: { value: 'TEXT', doc: 'why, sent to the streams with pgfeed.revoked and kept in pgfeed.revocations' } },
    prints: true,
    examples: ["pgfeed revoke user:42 --reason 'left the company'", 'pgfeed revoke svc-billing --json'],
  },
  async ({ config, args: [subject], flags, print }) => {
    needDatabase('revoke', config.databaseUrl);
    // Checked here, so that an empty or all-blank subject is a usage error, not a revocation of nobody.
    if (subject.trim() === '') throw usage('pgfeed revoke needs a non-empty <subject> (the sub claim of the tokens to revoke)');
    const reason = typeof flags.reason === 'string' ? flags.reason : '';
    return withDatabase('revoke', config.databaseUrl, async (db) => {
      const { rows: has } = await db.query<{ ok: boolean }>(`SELECT to_regprocedure('pgfeed.revoke(text,text)') IS NOT NULL AS ok`);
      if (!has[0].ok) throw new Error(`${whereTo(config.databaseUrl)} has no pgfeed.revoke() (migration 004); run pgfeed migrate first`);
      const { rows } = await db.query<{ at: Date }>('SELECT pgfeed.revoke($1, $2) AS at', [subject, reason]);
      const at = rows[0].at.toISOString();
      print({ subject, reason, revoked_at: at }, () => `revoked ${subject} at ${at}`);
      return 0;
    });
  },
);
