// Debian's chromium driven by playwright-core, headless, as root: the flags
// are the ones that work here (no sandbox as root, no GPU in a container).
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function launchBrowser(t: Teardown): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless=new', '--no-sandbox', '--disable-gpu'] });
  t.teardown(() => browser.close());
  return browser;
}
