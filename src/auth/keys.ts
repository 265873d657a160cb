import { createPublicKey, type KeyObject } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { PgfeedError } from '../errors.js';
import type { Logger } from '../log.js';

/** Where tokens' keys come from: exactly one of these settings. */
export interface KeySettings {
  readonly jwtSecret: string;
  readonly jwtPublicKeyFile: string;
  readonly jwksFile: string;
}

/**
 * A key and the only algorithms it may verify. The list is what refuses
 * algorithm confusion: an HS256 token "signed" with the bytes of a public
 * key is never checked against that key, because a public key allows only
 * its own asymmetric algorithm (and jose refuses `alg: none` always).
 */
export interface VerifyKey {
  readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  readonly algorithms: readonly string[];
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

const EC_ALGORITHMS: Readonly<Record<string, string>> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

const invalid = (message: string, cause?: unknown) => new PgfeedError('invalid_config', message, { cause });

/** The algorithm a PEM public key signs with: RSA RS256, P-256 ES256 (P-384, P-521 likewise), Ed25519 EdDSA. */
function publicKeyAlgorithms(key: KeyObject, file: string): string[] {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return ['RS256'];
  if (type === 'ed25519') return ['EdDSA', 'Ed25519'];
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (type === 'ec' && curve && EC_ALGORITHMS[curve]) return [EC_ALGORITHMS[curve]];
  throw invalid(`PGFEED_JWT_PUBLIC_KEY_FILE ${file} holds a ${type}${curve ? ` (${curve})` : ''} key; use an RSA, P-256, P-384, P-521 or Ed25519 public key`);
}

async function loadPublicKey(file: string): Promise<VerifyKey> {
  let key: KeyObject;
  try {
    key = createPublicKey(await readFile(file, 'utf8'));
  } catch (err) {
    throw invalid(`PGFEED_JWT_PUBLIC_KEY_FILE ${file} cannot be read as a PEM public key: ${(err as Error).message}`, err);
  }
  return { key, algorithms: publicKeyAlgorithms(key, file) };
}

async function loadJwks(file: string): Promise<VerifyKey> {
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(await readFile(file, 'utf8')) as JSONWebKeySet;
  } catch (err) {
    throw invalid(`PGFEED_JWKS_FILE ${file} cannot be read as JSON: ${(err as Error).message}`, err);
  }
  if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) throw invalid(`PGFEED_JWKS_FILE ${file} has no "keys" list`);
  // A shared secret in a key set would let HS256 in beside the public keys.
  if (jwks.keys.some((k) => k.kty === 'oct')) throw invalid(`PGFEED_JWKS_FILE ${file} holds a symmetric (oct) key; give a shared secret as PGFEED_JWT_SECRET instead`);
  try {
    return { key: createLocalJWKSet(jwks), algorithms: ASYMMETRIC };
  } catch (err) {
    throw invalid(`PGFEED_JWKS_FILE ${file} is not a valid JWKS: ${(err as Error).message}`, err);
  }
}

/** The key file to watch and re-read, if the key is in one. */
function keyFile(s: KeySettings): string {
  return s.jwtPublicKeyFile || s.jwksFile;
}

async function load(s: KeySettings): Promise<VerifyKey> {
  if (s.jwtSecret) return { key: new TextEncoder().encode(s.jwtSecret), algorithms: ['HS256'] };
  if (s.jwtPublicKeyFile) return loadPublicKey(s.jwtPublicKeyFile);
  return loadJwks(s.jwksFile);
}

/**
 * The verification key, re-read from its file on SIGHUP (reload()) or when
 * the file changes, so keys rotate without a restart. A file that no longer
 * reads keeps the previous key in use, loudly: a half-written file must not
 * lock every client out.
 */
export class KeyRing {
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;

  private constructor(
    private key: VerifyKey,
    private readonly settings: KeySettings,
    private readonly log: Logger,
  ) {}

  static async open(settings: KeySettings, log: Logger): Promise<KeyRing> {
    const ring = new KeyRing(await load(settings), settings, log);
    ring.watchFile();
    return ring;
  }

  get current(): VerifyKey {
    return this.key;
  }

  /** Re-reads the key file; true when the new key is in use. */
  async reload(): Promise<boolean> {
    const file = keyFile(this.settings);
    if (!file) return true;
    try {
      this.key = await load(this.settings);
      this.log.info({ file }, 'token keys reloaded');
      return true;
    } catch (err) {
      this.log.error({ file, err: (err as Error).message }, 'token keys not reloaded; the previous keys stay in use');
      return false;
    }
  }

  /**
   * Watches the directory rather than the file: rotation tools replace the
   * file by a rename, which ends a watch on the old inode.
   */
  private watchFile(): void {
    const file = keyFile(this.settings);
    if (!file) return;
    try {
      this.watcher = watch(dirname(file), (_event, name) => {
        if (name !== null && name !== basename(file)) return;
        clearTimeout(this.debounce);
        // An editor's save is several events; read once they settle.
        this.debounce = setTimeout(() => void this.reload(), 100);
      });
      this.watcher.on('error', (err) => this.log.warn({ file, err: err.message }, 'cannot watch the key file; reload keys with SIGHUP'));
    } catch (err) {
      this.log.warn({ file, err: (err as Error).message }, 'cannot watch the key file; reload keys with SIGHUP');
    }
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
  }
}

/** Which key settings are given; start-up refuses more than one. */
export function keySettingsGiven(s: KeySettings): string[] {
  return [
    s.jwtSecret && 'PGFEED_JWT_SECRET',
    s.jwtPublicKeyFile && 'PGFEED_JWT_PUBLIC_KEY_FILE',
    s.jwksFile && 'PGFEED_JWKS_FILE',
  ].filter((x): x is string => Boolean(x));
}
