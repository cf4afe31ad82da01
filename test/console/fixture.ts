import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { hashPassword } from '../../src/console/passwords.ts';
import { ROOT, freePort } from '../helpers/cli.ts';
import { mdmFixture } from '../mdm/fixture.ts';

/** Debian's Chromium, driven by playwright-core: no browser is downloaded. */
export const CHROMIUM = '/usr/bin/chromium';
/** Where the browser tests leave their screenshots (CI keeps the directory as an artifact). */
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'console');

export const ADMIN = 'alice';
export const PASSWORD = 'correct horse battery staple';

/** The in-process server (virtual clock) listening on loopback, one administrator, and a headless Chromium. */
export async function consoleFixture(flags: Record<string, string> = {}) {
  const port = await freePort();
  const base = `https://localhost:${port}`;
  const f = await mdmFixture({ port: String(port), 'public-url': base, hostname: ['localhost'], ...flags } as never);
  await f.server.listen({ host: '127.0.0.1', port });
  const now = f.now();
  await f.app.store.insertAdminAccount({
    name: ADMIN,
    passwordHash: await hashPassword(PASSWORD),
    createdAt: now,
    passwordChangedAt: now,
    lastLoginAt: null,
  });
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--host-resolver-rules=MAP localhost 127.0.0.1'],
  });
  // The server's TLS certificate chains to certmdm's own root, which this browser profile does not hold.
  const context: BrowserContext = await browser.newContext({
    ignoreHTTPSErrors: true,
    acceptDownloads: true,
    viewport: { width: 1360, height: 900 },
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    ...f,
    get ra() {
      return f.ra;
    },
    base,
    browser,
    context,
    /** Saves a full-page screenshot as a test artifact. */
    shot: async (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true }),
    login: async (page: Page, password = PASSWORD) => {
      await page.goto(`${base}/console/login`);
      await page.fill('#name', ADMIN);
      await page.fill('#password', password);
      await Promise.all([page.waitForLoadState('load'), page.click('#login-form button[type=submit]')]);
    },
    close: async () => {
      await browser.close();
      await f.close();
    },
  };
}

/** The data-* attributes of every element matching `selector`. */
export async function dataOf(page: Page, selector: string): Promise<Record<string, string>[]> {
  return page.$$eval(selector, (elements) => elements.map((e) => ({ ...(e as HTMLElement).dataset }) as Record<string, string>));
}

export function assertNoScript(html: string): void {
  assert.ok(!/<script/i.test(html), 'no script element on any console page');
  assert.ok(!/\son[a-z]+\s*=/i.test(html), 'no inline event handler');
}
