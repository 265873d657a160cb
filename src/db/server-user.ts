import { execFileSync, spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';

/** The unprivileged OS user a local Postgres runs as when pgfeed runs as root. */
export interface ServerUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const NAME = 'postgres';

function lookup(): ServerUser | null {
  try {
    const uid = Number(execFileSync('id', ['-u', NAME], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
    const gid = Number(execFileSync('id', ['-g', NAME], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
    return { name: NAME, uid, gid };
  } catch {
    return null;
  }
}

/**
 * Postgres refuses to run as root. As root, its tools run as the `postgres`
 * user, created (a system user, no home, no shell) when missing; as anyone
 * else they run as that user, and this returns null.
 */
export function serverUser(): ServerUser | null {
  if (userInfo().uid !== 0) return null;
  const found = lookup();
  if (found) return found;
  try {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', NAME], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const why = ((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim().split('\n')[0];
    throw new Error(`Postgres cannot run as root, and the ${NAME} OS user to run it as could not be created (useradd: ${why}). Create it (useradd --system ${NAME}), run pgfeed as a non-root user, or set DATABASE_URL to use your own server.`, { cause: err });
  }
  const made = lookup();
  if (!made) throw new Error(`useradd created no ${NAME} user; create it by hand (useradd --system ${NAME}) or set DATABASE_URL.`);
  return made;
}

/**
 * Whether `user` can enter directory `dir`: every directory on the way must
 * let it search. Asked of the kernel by a shell running as that user, since
 * permission bits alone miss ACLs and mount options.
 */
export function canEnter(user: ServerUser | null, dir: string): boolean {
  const r = spawnSync('/bin/sh', ['-c', 'cd -- "$1"', 'sh', dir], {
    stdio: 'ignore',
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  return r.status === 0;
}
