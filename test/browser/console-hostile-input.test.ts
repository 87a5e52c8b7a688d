/**
 * Hostile strings in the web console, in Chromium: user names, display names, cluster
 * display names, token descriptions and group names carrying markup, quotes, unicode and
 * the longest values the API accepts, shown on every page that shows them. Nothing of them
 * may run (no dialog, no element made from them), each is shown as text, and no page grows
 * wider than the window (a phone's too), so no control is pushed out of sight. Every page
 * carries the anti-framing and content-security headers, and every resource it loads (its
 * stylesheet, its icon) is found. Screenshots go to test-artifacts/console/.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { FIXTURE_ADMIN_PASSWORD, startProxyFixture } from '../support/proxy-fixture.js';
import type { ProxyFixture } from '../support/proxy-fixture.js';

const ARTIFACTS = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'test-artifacts', 'console');

/** Markup that would run or inject if it were not escaped, with quotes of both kinds and unicode. */
const MARKUP = `"><script>alert(1)</script><img src=x onerror=alert(2)>'ü→𝕏`;
/** `MARKUP` plus one unbroken word, up to `length` characters (the API's limits). */
const hostile = (length: number): string => MARKUP + 'W'.repeat(length - MARKUP.length);
const LONG_USERNAME = `m${'x'.repeat(63)}`;
const DISPLAY_NAME = hostile(256);
const CLUSTER_NAME = hostile(256);
const TOKEN_DESCRIPTION = hostile(256);
const GROUP = `ldap:cn=${hostile(300)}`;

describe('web console with hostile user-controlled strings', () => {
  let fixture: ProxyFixture;
  let proxy: ProxyFixture['proxy'];
  let context: BrowserContext;
  let page: Page;
  const dialogs: string[] = [];
  /** What the browser reported as errors: a resource that failed to load (Playwright does not report /favicon.ico requests). */
  const errors: string[] = [];

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    fixture = await startProxyFixture({ name: 'console-hostile', cluster: () => ({ displayName: CLUSTER_NAME }) });
    ({ proxy } = fixture);
    const { api, adminToken } = fixture;
    const user = await fixture.addUser(LONG_USERNAME);
    const named = await api.request('PATCH', `/v1/users/${user.id}`, { token: adminToken, body: { displayName: DISPLAY_NAME } });
    assert.equal(named.status, 200, named.text);
    const agentCluster = await api.request('POST', '/v1/clusters', { token: adminToken, body: { id: `edge-${'e'.repeat(58)}`, mode: 'agent', displayName: CLUSTER_NAME } });
    assert.equal(agentCluster.status, 201, agentCluster.text);

    ({ context, page } = await launchChromium(join(fixture.dir, 'chromium-profile')));
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`${message.text()} ${message.location().url}`);
    });
    await page.goto(`${proxy.url}/console/login`);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(FIXTURE_ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'My clusters' }).waitFor();
  });

  after(async () => {
    await context?.close();
    await fixture?.close();
  });

  /** Runs in the page (strings: this project's TypeScript has no DOM types). */
  async function layout(): Promise<{ scrollWidth: number; innerWidth: number; scripts: number; images: number; offscreen: string[] }> {
    return (await page.evaluate(`({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      scripts: document.querySelectorAll('script').length,
      images: document.querySelectorAll('img').length,
      offscreen: [...document.querySelectorAll('button, a, input, select, textarea')]
        .filter((element) => element.getBoundingClientRect().right > window.innerWidth)
        .map((element) => element.outerHTML.slice(0, 80)),
    })`)) as { scrollWidth: number; innerWidth: number; scripts: number; images: number; offscreen: string[] };
  }

  /** Opens a page, checks its headers, that the strings are text only, and that it fits the window. */
  async function visit(path: string, shows: readonly string[], screenshot: string): Promise<void> {
    const answer = await page.goto(`${proxy.url}${path}`);
    assert.equal(answer!.status(), 200, path);
    const headers = answer!.headers();
    assert.match(headers['content-security-policy'] ?? '', /default-src 'none'.*frame-ancestors 'none'/, path);
    assert.equal(headers['x-frame-options'], 'DENY', path);
    assert.equal(headers['x-content-type-options'], 'nosniff', path);
    const text = (await page.textContent('body')) ?? '';
    for (const shown of shows) assert.ok(text.includes(shown), `${path} shows ${shown.slice(0, 40)}… as text`);
    const found = await layout();
    await page.screenshot({ path: join(ARTIFACTS, `hostile-${screenshot}.png`), fullPage: true });
    assert.equal(found.scripts, 0, `${path}: no script element`);
    assert.equal(found.images, 0, `${path}: no img element`);
    assert.ok(found.scrollWidth <= found.innerWidth, `${path} is ${found.scrollWidth}px wide in a ${found.innerWidth}px window`);
    assert.deepEqual(found.offscreen, [], `${path}: every control is inside the window`);
    assert.deepEqual(dialogs, [], 'nothing ran');
    await page.waitForLoadState('networkidle');
    assert.deepEqual(errors, [], 'every resource of the pages loads (no /favicon.ico 404)');
  }

  test('My clusters shows the cluster display names as text, within the window', async () => {
    await visit('/console/', [CLUSTER_NAME], 'my-clusters');
  });

  test('Users shows the long user name and the display name as text, within the window', async () => {
    await visit('/console/admin/users', [LONG_USERNAME, DISPLAY_NAME], 'users');
  });

  test('Clusters shows the display names as text, within the window', async () => {
    await visit('/console/admin/clusters', [CLUSTER_NAME], 'clusters');
  });

  test('a group member added through the form, and the members, are shown as text within the window', async () => {
    await page.goto(`${proxy.url}/console/clusters/dev/members`);
    await page.getByLabel('Kind').selectOption('Group');
    await page.getByLabel('Name', { exact: true }).fill(GROUP);
    await page.getByLabel('Role').selectOption('viewer');
    await page.getByRole('button', { name: 'Add member' }).click();
    await page.getByText('The member was added.').waitFor();
    await visit('/console/clusters/dev/members', [GROUP, LONG_USERNAME, `Members of ${CLUSTER_NAME}`], 'members');
  });

  test('a token described through the form is shown as text within the window, and revoked from there', async () => {
    await page.goto(`${proxy.url}/console/tokens`);
    await page.getByLabel('Description').fill(TOKEN_DESCRIPTION);
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByText('Copy it now').waitFor();
    await visit('/console/tokens', [TOKEN_DESCRIPTION], 'tokens');
    await page.locator('tr', { hasText: TOKEN_DESCRIPTION }).getByRole('button', { name: /^Revoke/ }).click();
    await page.getByText('The token was revoked.').waitFor();
    assert.ok(!((await page.textContent('body')) ?? '').includes(TOKEN_DESCRIPTION), 'the revoked token is gone');
  });

  test('Providers fits the window and carries the headers', async () => {
    await visit('/console/admin/providers', ['username and password'], 'providers');
  });

  test('in a phone-sized window no page is wider than the window: wide tables scroll inside their cards', async () => {
    await page.setViewportSize({ width: 400, height: 800 });
    try {
      for (const path of ['/console/', '/console/tokens', '/console/admin/users', '/console/admin/clusters', '/console/clusters/dev/members', '/console/admin/providers']) {
        await page.goto(`${proxy.url}${path}`);
        const found = await layout();
        assert.ok(found.scrollWidth <= found.innerWidth, `${path} is ${found.scrollWidth}px wide in a ${found.innerWidth}px window`);
      }
      await page.screenshot({ path: join(ARTIFACTS, 'hostile-narrow-providers.png'), fullPage: true });
    } finally {
      await page.setViewportSize({ width: 1200, height: 800 });
    }
  });
});
