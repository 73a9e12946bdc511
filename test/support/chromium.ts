import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';

/**
 * The portal's browser stories (test/portal/*Browser*.test.ts, browser.test.ts):
 * Debian's chromium driven by playwright-core, axe-core on every page, and the
 * pages photographed at 1280 and 390 px wide for a person to look at (in
 * FORFAIT_SCREENS, default /work/notes/screens; never the repository).
 */

/** The page's document, as the callbacks run in the browser see it (the tests are not compiled with the DOM library). */
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveBrowser = existsSync(chromiumPath);
export const screensDir = process.env.FORFAIT_SCREENS ?? '/work/notes/screens';
const axeSource = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The environment without libfaketime's variables: chromium crashes with it preloaded. */
function browserEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && e[0] !== 'LD_PRELOAD' && !e[0].startsWith('FAKETIME')));
}

export async function launchChromium(): Promise<Browser> {
  await mkdir(screensDir, { recursive: true }).catch(() => undefined);
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    env: browserEnv(),
  });
}

/** A person at a desk in Paris: a fresh context (cookies of its own), 1280 px wide. */
export async function newPerson(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'fr-FR', timezoneId: 'Europe/Paris', acceptDownloads: true });
  return { context, page: await context.newPage() };
}

/** What axe said on each page looked at, serious or not, for the closing note. */
export const axeSeen: { name: string; violations: string[] }[] = [];

/** axe-core on the page (no serious or critical violation), then the page at 1280 and 390 px wide. */
export async function look(page: Page, name: string): Promise<void> {
  await page.evaluate(await axeSource); // by the DevTools protocol: the page's CSP does not apply
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, o: unknown): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  // every page names itself: one visible h1, with words
  const headings = await page.evaluate(() => {
    type Heading = { getClientRects(): { length: number }; textContent: string | null };
    const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): Iterable<Heading> } }).document;
    return [...doc.querySelectorAll('h1')].filter((h) => h.getClientRects().length > 0).map((h) => h.textContent?.trim() ?? '');
  });
  expect(headings.length, `${name}: visible h1 ${JSON.stringify(headings)}`).toBe(1);
  expect(headings[0], `${name}: an empty h1`).not.toBe('');
  axeSeen.push({ name, violations: result.map((v) => `${v.impact} ${v.id}`) });
  expect(serious, `${name}: ${JSON.stringify(serious)}`).toEqual([]);
  const size = page.viewportSize() ?? { width: 1280, height: 800 };
  await page.screenshot({ path: path.join(screensDir, `${name}-1280.png`), fullPage: true }).catch(() => undefined);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(screensDir, `${name}-390.png`), fullPage: true }).catch(() => undefined);
  // nothing wider than the phone's screen but the tables, which scroll in their own box
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${name} scrolls sideways at 390 px`).toBeLessThanOrEqual(1);
  await page.setViewportSize(size);
}

export async function signIn(page: Page, origin: string, email: string, password: string): Promise<void> {
  await page.goto(`${origin}/portal/signin`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('form[action="/portal/signin"] button[type=submit]')]);
}
