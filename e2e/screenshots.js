// Screenshots of the viewer's main views, for looking at the layout:
// `node screenshots.js [out-dir]` (default /tmp/auditlog-shots).

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { build, generate, startServer, browser } from './harness.js';

const out = process.argv[2] || '/tmp/auditlog-shots';
mkdirSync(out, { recursive: true });
const bins = build();
const dir = mkdtempSync(join(tmpdir(), 'auditlog-shots-'));
const data = join(dir, 'data');
generate(bins, data, Number(process.env.E2E_EVENTS || 20000), 7);
const server = await startServer(bins, { data });
const { ctx, close } = await browser(dir);
try {
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.log('console:', m.text()); });
  page.on('pageerror', (e) => console.log('pageerror:', e.message));
  const width = Number(process.env.WIDTH || 1440);
  const height = Number(process.env.HEIGHT || 900);
  await page.setViewportSize({ width, height });
  await page.goto(`${server.base}/`);
  await page.waitForSelector('.tr');
  await page.waitForSelector('.ov-bars');
  await page.screenshot({ path: join(out, 'events.png') });
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.d-fields');
  await page.screenshot({ path: join(out, 'detail.png') });
  await page.keyboard.press('Escape');
  await page.fill('#filter', "action_name = 'items.update' AND AND actor.id = '1'");
  await page.press('#filter', 'Enter');
  await page.waitForSelector('#filter-error:not([hidden])');
  await page.screenshot({ path: join(out, 'filter-error.png') });
  await page.fill('#filter', "action_name = 'no.such.action'");
  await page.press('#filter', 'Enter');
  await page.waitForSelector('#empty:not([hidden])');
  await page.screenshot({ path: join(out, 'empty.png') });
  await page.fill('#filter', "actor.type = 'user'");
  await page.press('#filter', 'Enter');
  await page.waitForSelector('.tr');
  await page.click('#export');
  await page.click('[data-job="csv"]');
  await page.waitForSelector('.jobs .s-completed', { timeout: 30000 });
  await page.screenshot({ path: join(out, 'exports.png') });
  console.log(`screenshots in ${out}`);
} finally {
  await close();
  await server.stop();
  server.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
