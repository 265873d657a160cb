import { isIP } from 'node:net';
import type { HttpRequest, HttpResponse } from './uws.js';

/**
 * The client a request is counted against in the per-client limits. From
 * the trusted proxy header when one is configured and the request has it
 * (X-Forwarded-For: its last entry, the address that the proxy itself
 * saw; entries before it are whatever the client wrote), else the peer.
 * Call before any await.
 */
export function clientAddress(res: HttpResponse, req: HttpRequest, trustedHeader: string): string {
  if (trustedHeader) {
    const value = req.getHeader(trustedHeader);
    const last = value.slice(value.lastIndexOf(',') + 1).trim();
    if (isIP(last)) return limitKey(last);
  }
  return limitKey(Buffer.from(res.getRemoteAddressAsText()).toString('latin1'));
}

/**
 * IPv4 addresses count one by one; IPv6 ones by their /64, the block one
 * host is usually given, so that a client cannot take a fresh limit by
 * changing the low bits of its address.
 */
export function limitKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (isIP(address) !== 6) return address;
  const [head, tail] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}
