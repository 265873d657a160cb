// systemd/pgfeed.service, read as systemd reads its [Service] section.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const UNIT = fileURLToPath(new URL('../../systemd/pgfeed.service', import.meta.url));

/** `Key=value` lines of the [Service] section, by key (a repeated key keeps every value, in order). */
export function serviceLines(path = UNIT): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1];
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (kv && section === 'Service') out.set(kv[1], [...(out.get(kv[1]) ?? []), kv[2]]);
  }
  return out;
}
