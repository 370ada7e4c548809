// Drives the bridge's web console in headless Debian Chromium (Playwright):
// logs in with tenant fk's admin token, sees fk and its loopback adapter and
// nothing of tenant tv, disables and re-enables the adapter watching its
// status change, and checks that a wrong token is shown as an error.
//
//   node tests/console/console-check.mjs <console url> <fk admin token>
//
// playwright-core is found in $BRYGGA_CONSOLE_DEPS/node_modules (installed by
// `cargo xtask test`; default: target/console-deps). Exits non-zero with a
// message saying which step failed.

import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node console-check.mjs <console url> <fk admin token>');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const deps = process.env.BRYGGA_CONSOLE_DEPS || path.join(here, '../../target/console-deps');
let chromium;
try {
  ({ chromium } = createRequire(path.join(deps, 'package.json'))('playwright-core'));
} catch (err) {
  console.error(`console-check: playwright-core not found in ${deps}/node_modules (run \`cargo xtask test\`): ${err.message}`);
  process.exit(1);
}

const WAIT_MS = 20_000;
const ROW = 'section.tenant[data-tenant="fk"] tr.adapter[data-kind="loopback"]';
const userDataDir = mkdtempSync(path.join(tmpdir(), 'brygga-console-chromium-'));
const pageErrors = [];
const apiPaths = [];
let context;
let page;

// The whole run has a deadline, so a hung browser never hangs the test.
const deadline = setTimeout(() => fail('the whole check', new Error('timed out after 120 s')), 120_000);

async function fail(step, err) {
  console.error(`console-check: FAILED at step "${step}": ${err && err.message ? err.message : err}`);
  if (page) {
    try {
      console.error('--- page text ---\n' + (await page.locator('body').innerText({ timeout: 2000 })));
    } catch (_) {
      /* the page is gone */
    }
  }
  if (pageErrors.length) console.error('--- page errors ---\n' + pageErrors.join('\n'));
  await close();
  process.exit(1);
}

async function close() {
  clearTimeout(deadline);
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

async function step(name, body) {
  try {
    await body();
    console.log(`console-check: ok: ${name}`);
  } catch (err) {
    await fail(name, err);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const statusOf = () => page.locator(`${ROW} .status`).getAttribute('data-status', { timeout: WAIT_MS });

async function waitForStatus(describe, accept) {
  const until = Date.now() + WAIT_MS;
  let last;
  while (Date.now() < until) {
    last = await statusOf();
    if (accept(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`the adapter's status never became ${describe}; it shows "${last}"`);
}

await step('launch Chromium', async () => {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // A 401 answer is logged as a failed resource; anything else is a bug (a CSP violation, a script error).
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
  page.on('request', (request) => {
    const { pathname } = new URL(request.url());
    if (pathname.startsWith('/api/')) apiPaths.push(`${request.method()} ${pathname}`);
  });
});

await step('open the console with its security headers', async () => {
  const response = await page.goto(url, { timeout: WAIT_MS });
  check(response && response.ok(), `GET ${url} answered ${response && response.status()}`);
  const headers = response.headers();
  const csp = headers['content-security-policy'] || '';
  check(csp.includes("default-src 'self'") && !csp.includes('unsafe-inline'), `Content-Security-Policy is "${csp}"`);
  check(headers['x-content-type-options'] === 'nosniff', 'no X-Content-Type-Options: nosniff');
  check((headers['cache-control'] || '').includes('no-store'), `Cache-Control is "${headers['cache-control']}"`);
  await page.locator('#token').waitFor({ state: 'visible', timeout: WAIT_MS });
});

await step("log in with fk's tenant-admin token", async () => {
  await page.locator('#token').fill(token);
  await page.locator('#login button[type="submit"]').click();
  await page.locator('#whoami', { hasText: 'tenant admin of fk' }).waitFor({ timeout: WAIT_MS });
  check(!page.url().includes(token), 'the token is in the URL');
  const stored = await page.evaluate(() => ({
    session: Object.values(sessionStorage),
    local: localStorage.length,
    cookie: document.cookie,
  }));
  check(stored.session.includes(token), 'the token is not in sessionStorage');
  check(await page.locator('#login').isHidden(), 'the login form is still shown');
  check(stored.local === 0 && stored.cookie === '', 'the token went to localStorage or a cookie');
});

await step('see tenant fk and its loopback adapter with a status', async () => {
  await page.locator(ROW).waitFor({ timeout: WAIT_MS });
  const status = await statusOf();
  check(status && status !== 'disabled', `loopback shows status "${status}"`);
  const badge = (await page.locator(`${ROW} .status`).innerText()).trim();
  check(badge.length > 0, 'the status badge is empty');
  console.log(`console-check: fk/loopback shows "${badge}" (${status})`);
});

await step("see fk's portal, its markup shown as text", async () => {
  const row = page.locator('section.tenant[data-tenant="fk"] tr.portal');
  await row.waitFor({ timeout: WAIT_MS });
  const text = await row.innerText();
  for (const expected of ['loopback', 'lobby', '!lobby:localhost', '<img src=x onerror=alert(1)>Lobby']) {
    check(text.includes(expected), `the portal row "${text}" lacks "${expected}"`);
  }
  check((await page.locator('main img').count()) === 0, 'the portal name was rendered as HTML');
});

await step('see nothing of tenant tv', async () => {
  check((await page.locator('section.tenant').count()) === 1, 'more than one tenant is shown');
  check((await page.locator('[data-tenant="tv"]').count()) === 0, 'a section for tv is shown');
  const text = await page.locator('body').innerText();
  check(!/\btv\b/.test(text), 'the page mentions tv');
  const asked = apiPaths.filter((p) => p.includes('/tenants/tv'));
  check(asked.length === 0, `the page asked the API about tv: ${asked.join(', ')}`);
});

await step('disable the adapter and see it disabled', async () => {
  await page.locator(`${ROW} button.toggle[data-action="disable"]`).click({ timeout: WAIT_MS });
  await waitForStatus('"disabled"', (s) => s === 'disabled');
  await page.locator(`${ROW} button.toggle[data-action="enable"]`).waitFor({ timeout: WAIT_MS });
  check(apiPaths.includes('POST /api/v1/tenants/fk/adapters/loopback/disable'), 'no disable call was made');
});

await step('enable the adapter and see it running again', async () => {
  await page.locator(`${ROW} button.toggle[data-action="enable"]`).click({ timeout: WAIT_MS });
  const status = await waitForStatus('anything but "disabled" or "stopped"', (s) => s && s !== 'disabled' && s !== 'stopped');
  await page.locator(`${ROW} button.toggle[data-action="disable"]`).waitFor({ timeout: WAIT_MS });
  console.log(`console-check: fk/loopback shows ${status} again`);
});

await step('no script errors or Content-Security-Policy violations', async () => {
  check(pageErrors.length === 0, pageErrors.join('; '));
});

await step('a wrong token shows an error', async () => {
  await page.locator('#logout').click({ timeout: WAIT_MS });
  await page.locator('#token').fill('not-a-token');
  await page.locator('#login button[type="submit"]').click();
  const error = page.locator('#error');
  await error.waitFor({ state: 'visible', timeout: WAIT_MS });
  const text = await error.innerText();
  check(text.includes('401') && text.includes('unknown or revoked token'), `the error shown is "${text}"`);
  check((await page.locator('section.tenant').count()) === 0, 'tenants are still shown');
  check(await page.locator('#token').isVisible(), 'the login form is not shown again');
  check(await page.evaluate(() => sessionStorage.length === 0), 'the wrong token stays in sessionStorage');
});

await close();
console.log('console-check: all steps passed');
