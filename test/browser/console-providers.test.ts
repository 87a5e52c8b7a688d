/**
 * The console's Providers page in a real browser (Debian's Chromium driven by playwright-core,
 * test/support/chromium.ts), against the real proxy with a local provider and
 * an LDAP provider on a real slapd: the admin sees each provider's health from the background
 * check, slapd stopped turns the LDAP row unhealthy with its reason, and started again
 * healthy. The page never checks by itself: it shows what the proxy last saw, so the test
 * reloads it until the background check has run. Screenshots go to test-artifacts/console/.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { eventually } from '../support/eventually.js';
import { FIXTURE_ADMIN_PASSWORD, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.js';
import { SEED, startSlapd, type TestSlapd, ldapProviderSettings } from '../support/slapd.js';

const ARTIFACTS = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'test-artifacts', 'console');

describe("the console's Providers page shows provider health, in Chromium", () => {
  let slapd: TestSlapd;
  let fixture: ProxyFixture;
  let context: BrowserContext;
  let page: Page;

  /** The text of the corp row's Health and Problem cells, once the page shows `state`. */
  async function waitForCorp(state: string): Promise<{ health: string; problem: string }> {
    const row = page.locator('tr', { has: page.getByRole('cell', { name: 'corp', exact: true }) });
    let cells = { health: '', problem: '' };
    await eventually(
      async () => {
        await page.reload();
        const texts = await row.getByRole('cell').allTextContents();
        cells = { health: texts[3] ?? '', problem: texts[5] ?? '' };
        return cells.health === state;
      },
      20_000,
      `the corp row to show ${state}`,
    );
    return cells;
  }

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    slapd = await startSlapd();
    fixture = await startProxyFixture({
      name: 'console-providers',
      config: () => ({
        providerHealth: { interval: '1s', timeout: '5s' },
        providers: [
          { name: 'local', type: 'local' },
          {
            name: 'corp',
            type: 'ldap',
            settings: ldapProviderSettings(slapd),
          },
        ],
      }),
    });
    ({ context, page } = await launchChromium(join(fixture.dir, 'chromium-profile')));
  });

  after(async () => {
    await context?.close();
    await fixture?.close();
    await slapd?.stop();
  });

  test('the admin sees both providers healthy, the LDAP one unhealthy while slapd is stopped, and healthy again', async () => {
    await page.goto(`${fixture.proxy.url}/console/login`);
    await page.getByLabel('Identity provider').selectOption('local');
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(FIXTURE_ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'My clusters' }).waitFor();
    await page.getByRole('link', { name: 'Providers' }).click();
    await page.getByRole('heading', { name: 'Identity providers' }).waitFor();

    const healthy = await waitForCorp('healthy');
    assert.equal(healthy.problem, 'none');
    const local = await page.locator('tr', { has: page.getByRole('cell', { name: 'local', exact: true }) }).getByRole('cell').allTextContents();
    assert.equal(local[3], 'healthy');
    assert.match(local[4] ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/, 'the time of the last check');
    await page.screenshot({ path: join(ARTIFACTS, '07-providers-healthy.png'), fullPage: true });

    await slapd.pause();
    const down = await waitForCorp('unhealthy');
    assert.match(down.problem, /ECONNREFUSED|connect/i);
    assert.ok(!(await page.content()).includes(SEED.service.password), 'the bind password is never on the page');
    await page.screenshot({ path: join(ARTIFACTS, '08-providers-ldap-down.png'), fullPage: true });

    await slapd.resume();
    assert.equal((await waitForCorp('healthy')).problem, 'none');
  });
});
