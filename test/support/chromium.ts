/**
 * Debian's Chromium (/usr/bin/chromium, installed by scripts/setup-chromium.sh) driven by
 * playwright-core, for the console tests. Playwright never downloads a browser: only the
 * system binary starts, with a fresh profile directory, no network services of its own, and
 * HTTPS errors ignored for this browser only (the proxy's generated CA is not in the
 * profile's trust store).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** A headless browser with its profile in `profileDir`, and its first page. */
export async function launchChromium(profileDir: string, options: { readonly acceptDownloads?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run bash scripts/setup-chromium.sh`);
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ignoreHTTPSErrors: true,
    acceptDownloads: options.acceptDownloads ?? false,
    viewport: { width: 1200, height: 800 },
  });
  return { context, page: context.pages()[0] ?? (await context.newPage()) };
}
