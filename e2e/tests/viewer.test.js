// The viewer in headless Chromium against the real server, with generated
// events (a week of them, ending now) plus a few known ones posted here.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { build, generate, startServer, browser, api } from '../harness.js';

const GENERATED = Number(process.env.E2E_EVENTS || 5000);
let bins;
let server;
let br;
let work;
const problems = []; // console errors and uncaught exceptions, per page

/** Known events: a marker action by one actor, with a payload. */
function marker(i, extra = {}) {
  return {
    action_name: 'e2e.marker',
    actor: { type: 'user', id: 'e2e-1', name: 'e2e@example.com' },
    environment: { id: 'e2e-env', primary: false },
    occurred_at: new Date(Date.now() - (i + 1) * 60e3).toISOString(),
    request: { method: 'PUT', path: `/items/${1000 + i}`, ip: '10.9.8.7', payload: { title: `marker ${i}`, nested: { deep: [1, 2, 3] } } },
    response: { status: 200, payload: { ok: true } },
    ...extra,
  };
}
const MARKERS = 3;

async function page() {
  const p = await br.ctx.newPage();
  p.on('console', (m) => {
    // Expected failed requests (a 400 for a bad filter, a 404 for an
    // endpoint this server lacks) are reported by the page itself.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  p.on('pageerror', (e) => problems.push(e.message));
  return p;
}

async function rowsText(p) {
  return p.$$eval('.tr', (rows) => rows
    .sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index))
    .map((r) => Array.from(r.children).map((c) => c.textContent)));
}

before(async () => {
  bins = build();
  work = mkdtempSync(join(tmpdir(), 'auditlog-e2e-work-'));
  const data = join(work, 'data');
  generate(bins, data, GENERATED, 7);
  server = await startServer(bins, { data });
  const r = await api(server.base, '/v1/events', { method: 'POST', body: Array.from({ length: MARKERS }, (_, i) => marker(i)) });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  br = await browser(work);
});

after(async () => {
  if (br) await br.close();
  if (server) { await server.stop(); server.cleanup(); }
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the page and its assets are served with types, caching and a CSP', async () => {
  const res = await fetch(`${server.base}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
  const html = await res.text();
  const js = html.match(/src="(\/assets\/[0-9a-f]+\/app\.js)"/)[1];
  const a = await fetch(`${server.base}${js}`);
  assert.match(a.headers.get('content-type'), /^text\/javascript/);
  assert.match(a.headers.get('cache-control'), /immutable/);
  const deep = await fetch(`${server.base}/events/01ARZ3NDEKTSV4RRFFQ69G5FAV`);
  assert.equal(deep.status, 200);
  assert.equal(await deep.text(), html);
});

test('loads the newest events, the overview and endless scroll', async () => {
  const p = await page();
  await p.goto(`${server.base}/?range=all`);
  await p.waitForSelector('.tr');
  const total = (await api(server.base, '/v1/events/count')).body.count;
  assert.equal(total, GENERATED + MARKERS);
  await p.waitForFunction((t) => document.getElementById('ov-total').textContent.startsWith(t), total.toLocaleString('en-US'));
  assert.ok(await p.$('.ov-bars .bar'), 'the chart has bars');
  const rows = await rowsText(p);
  const times = rows.map((r) => r[0]);
  assert.deepEqual([...times].sort().reverse(), times, 'newest first');
  // The DOM holds only the rows in view, however many are loaded.
  const before = await p.$$eval('.tr', (r) => r.length);
  assert.ok(before < 120, `${before} rows in the DOM`);
  await p.$eval('#tbody', (b) => { b.scrollTop = b.scrollHeight; });
  await p.waitForFunction(() => /^(400|[4-9]\d\d|\d,\d{3}) events loaded/.test(document.getElementById('tfoot').textContent));
  const after = await p.$$eval('.tr', (r) => r.length);
  assert.ok(after < 120, `${after} rows in the DOM after scrolling`);
  await p.close();
});

test('a good filter narrows the table and lives in the URL', async () => {
  const p = await page();
  await p.goto(`${server.base}/?range=all`);
  await p.waitForSelector('.tr');
  await p.fill('#filter', "action_name = 'e2e.marker'");
  await p.press('#filter', 'Enter');
  await p.waitForFunction((n) => document.querySelectorAll('.tr').length === n
    && [...document.querySelectorAll('.tr .c-action')].every((c) => c.textContent === 'e2e.marker'), MARKERS);
  assert.equal(new URL(p.url()).searchParams.get('q'), "action_name = 'e2e.marker'");
  await p.waitForFunction(() => document.getElementById('ov-total').textContent.startsWith('3 events'));
  // The shared URL reproduces the view.
  const p2 = await page();
  await p2.goto(p.url());
  await p2.waitForFunction((n) => document.querySelectorAll('.tr').length === n, MARKERS);
  assert.equal(await p2.inputValue('#filter'), "action_name = 'e2e.marker'");
  await p.close();
  await p2.close();
});

test('quick filters compose with the filter text', async () => {
  const p = await page();
  await p.goto(`${server.base}/?range=all&q=${encodeURIComponent("request.path LIKE '/items/%'")}`);
  await p.waitForSelector('.tr');
  await p.fill('#q-actor', 'user:e2e-1');
  await p.press('#q-actor', 'Enter');
  await p.waitForFunction((n) => document.querySelectorAll('.tr').length === n, MARKERS);
  assert.equal(new URL(p.url()).searchParams.get('actor'), 'user:e2e-1');
  await p.fill('#q-env', 'nowhere');
  await p.press('#q-env', 'Enter');
  await p.waitForSelector('#empty:not([hidden])');
  await p.close();
});

test('a bad filter shows the server error at its column', async () => {
  const bad = "action_name = 'items.update' AND AND actor.id = '1'";
  const r = await api(server.base, '/v1/events', { params: { filter: bad } });
  assert.equal(r.status, 400);
  const column = r.body.error.column;
  assert.ok(column > 1);
  const p = await page();
  await p.goto(`${server.base}/?range=all`);
  await p.waitForSelector('.tr');
  // With a quick filter on, the text is sent wrapped: the column must
  // still point into what the user typed.
  await p.fill('#q-action', 'items.update');
  await p.press('#q-action', 'Enter');
  await p.fill('#filter', bad);
  await p.press('#filter', 'Enter');
  await p.waitForSelector('#filter-error:not([hidden])');
  assert.equal(await p.$eval('#filter-error', (e) => e.dataset.column), String(column));
  const caret = await p.$eval('.ferr-caret', (e) => e.textContent);
  assert.equal(caret.indexOf('^'), column - 1);
  assert.equal(await p.$eval('#filter', (e) => e.selectionStart), column - 1);
  assert.match(await p.textContent('.ferr-msg'), /unexpected 'AND'/);
  assert.equal(await p.$$eval('.tr', (r) => r.length), 0);
  await p.close();
});

test('the empty state says nothing matched and offers a way out', async () => {
  const p = await page();
  await p.goto(`${server.base}/?range=1h&q=${encodeURIComponent("action_name = 'no.such.action'")}`);
  await p.waitForSelector('#empty:not([hidden])');
  assert.match(await p.textContent('#empty'), /No events match this filter/);
  await p.click('text=Clear filters');
  await p.waitForSelector('.tr');
  assert.equal(new URL(p.url()).searchParams.get('q'), null);
  await p.close();
});

test('a detail opens by click and by keyboard, with a permanent link', async () => {
  const p = await page();
  await p.goto(`${server.base}/?range=all&q=${encodeURIComponent("action_name = 'e2e.marker'")}`);
  await p.waitForFunction((n) => document.querySelectorAll('.tr').length === n, MARKERS);
  await p.click('.tr[data-index="0"]');
  await p.waitForSelector('.d-fields');
  const id = await p.$eval('.tr[data-index="0"]', (r) => r.dataset.id);
  assert.equal(new URL(p.url()).pathname, `/events/${id}`);
  assert.match(await p.textContent('.d-fields'), new RegExp(id));
  assert.match(await p.textContent('.d-fields'), /10\.9\.8\.7/);
  assert.match(await p.textContent('#detail'), /"marker 0"/, 'the request payload is shown');
  // Nested payloads collapse and expand.
  const nested = p.locator('#detail .json details', { hasText: 'nested' }).first();
  assert.equal(await nested.getAttribute('open'), '');
  await nested.locator('summary').first().click();
  assert.equal(await nested.getAttribute('open'), null);
  await p.keyboard.press('Escape');
  await p.waitForSelector('#detail', { state: 'hidden' });
  assert.equal(new URL(p.url()).pathname, '/');
  // Keyboard: the clicked row stays selected; j j k Enter opens the next one.
  await p.keyboard.press('j');
  await p.keyboard.press('j');
  await p.keyboard.press('k');
  await p.keyboard.press('Enter');
  await p.waitForSelector('.d-fields');
  const second = await p.$eval('.tr[data-index="1"]', (r) => r.dataset.id);
  assert.equal(new URL(p.url()).pathname, `/events/${second}`);
  // '/' focuses the filter.
  await p.keyboard.press('Escape');
  await p.keyboard.press('/');
  assert.equal(await p.evaluate(() => document.activeElement.id), 'filter');

  // The permanent link opens straight to the event in a fresh tab.
  const fresh = await page();
  await fresh.goto(`${server.base}/events/${id}`);
  await fresh.waitForSelector('.d-fields');
  assert.match(await fresh.textContent('.d-fields'), new RegExp(id));
  await fresh.goto(`${server.base}/events/01ARZ3NDEKTSV4RRFFQ69G5FAV`);
  await fresh.waitForFunction(() => /No event with id/.test(document.getElementById('detail').textContent));
  await fresh.close();
  await p.close();
});

test('export downloads the current filter as CSV', async (t) => {
  const probe = await fetch(`${server.base}/v1/export?format=csv`);
  // Not read: an open export would hold the server's shutdown up.
  await probe.body?.cancel();
  if (probe.status === 404) { t.skip('GET /v1/export is not on this server yet'); return; }
  const p = await page();
  await p.goto(`${server.base}/?range=all&q=${encodeURIComponent("action_name = 'e2e.marker'")}`);
  await p.waitForFunction((n) => document.querySelectorAll('.tr').length === n, MARKERS);
  await p.click('#export');
  const [download] = await Promise.all([
    p.waitForEvent('download'),
    p.click('[data-format="csv"]'),
  ]);
  const file = join(work, 'export.csv');
  await download.saveAs(file);
  const lines = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  assert.equal(lines.length, MARKERS + 1, 'a header and one line per event');
  assert.ok(lines.slice(1).every((l) => l.includes('e2e.marker')));
  await p.close();
});

test('an export job appears in the history and downloads once completed', async () => {
  const p = await page();
  await p.goto(`${server.base}/?range=all&q=${encodeURIComponent("action_name = 'e2e.marker'")}`);
  await p.waitForFunction((n) => document.querySelectorAll('.tr').length === n, MARKERS);
  await p.click('#export');
  await p.click('[data-job="ndjson"]');
  await p.waitForSelector('#view-exports:not([hidden])');
  assert.equal(new URL(p.url()).searchParams.get('view'), 'exports');
  const row = p.locator('.jobs tbody tr', { hasText: 'e2e.marker' }).first();
  await row.locator('.s-completed').waitFor({ timeout: 20000 });
  assert.equal(await row.locator('td').nth(3).textContent(), String(MARKERS), 'rows');
  const [download] = await Promise.all([p.waitForEvent('download'), row.locator('button', { hasText: 'Download' }).click()]);
  const file = join(work, 'job.ndjson');
  await download.saveAs(file);
  const events = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(events.length, MARKERS);
  assert.ok(events.every((e) => e.action_name === 'e2e.marker'));
  await p.close();
});

test('live mode shows a newly posted event', async (t) => {
  const probe = await fetch(`${server.base}/v1/tail`, { signal: AbortSignal.timeout(1500) }).catch(() => null);
  if (probe && probe.status === 404) { t.skip('GET /v1/tail is not on this server yet'); return; }
  if (probe && probe.body) await probe.body.cancel();
  const p = await page();
  await p.goto(`${server.base}/?range=24h`);
  await p.waitForSelector('.tr');
  await p.click('#live');
  await p.waitForSelector('#live.on');
  const ev = marker(0, { action_name: 'e2e.live', occurred_at: new Date().toISOString() });
  const r = await api(server.base, '/v1/events', { method: 'POST', body: ev });
  assert.equal(r.status, 201);
  await p.waitForFunction(() => document.querySelector('.tr[data-index="0"] .c-action')?.textContent === 'e2e.live', null, { timeout: 10000 });
  assert.equal(await p.$eval('.tr[data-index="0"]', (row) => row.dataset.id), r.body.ids[0]);
  await p.click('#live');
  await p.waitForSelector('#live:not(.on)');
  await p.close();
});

test('no script errors or CSP violations in any page', () => {
  assert.deepEqual(problems, []);
});
