// Signing in to a server with access tokens: a read token sees the log, an
// ingest token is refused with a clear message, a wrong token is rejected,
// and the token never appears in a URL.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { build, startServer, browser, api, makeToken } from '../harness.js';

let server;
let br;
let work;
let tokens;

before(async () => {
  const bins = build();
  work = mkdtempSync(join(tmpdir(), 'auditlog-e2e-auth-'));
  tokens = {
    read: makeToken(bins, 'auditor', 'read'),
    ingest: makeToken(bins, 'app-backend', 'ingest'),
    admin: makeToken(bins, 'ops', 'admin'),
  };
  const config = Object.values(tokens).map((t) => t.entry).join('\n\n');
  server = await startServer(bins, { data: join(work, 'data'), config });
  const r = await api(server.base, '/v1/events', {
    method: 'POST',
    token: tokens.ingest.token,
    body: { action_name: 'e2e.signed', actor: { type: 'user', id: '7' } },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  br = await browser(work);
});

after(async () => {
  if (br) await br.close();
  if (server) { await server.stop(); server.cleanup(); }
  if (work) rmSync(work, { recursive: true, force: true });
});

async function signIn(p, token) {
  await p.waitForSelector('#signin:not([hidden])');
  await p.fill('#token', token);
  await p.press('#token', 'Enter');
}

test('the page is served without a token, the API is not', async () => {
  assert.equal((await fetch(`${server.base}/`)).status, 200);
  assert.equal((await api(server.base, '/v1/events')).status, 401);
});

test('an ingest token is refused with a clear message', async () => {
  const p = await br.ctx.newPage();
  await p.goto(`${server.base}/`);
  await signIn(p, tokens.ingest.token);
  await p.waitForSelector('#signin-error:not([hidden])');
  assert.match(await p.textContent('#signin-error'), /ingest token.*cannot read|can send events but not read/);
  assert.ok(await p.isHidden('#app'));
  assert.equal(await p.evaluate(() => sessionStorage.getItem('auditlog.token')), null, 'not kept');
  await p.close();
});

test('a wrong token is rejected', async () => {
  const p = await br.ctx.newPage();
  await p.goto(`${server.base}/`);
  await signIn(p, 'alog_not-a-real-token');
  await p.waitForSelector('#signin-error:not([hidden])');
  assert.match(await p.textContent('#signin-error'), /not accepted/);
  await p.close();
});

test('a read token sees the log; the token stays out of URLs', async () => {
  const p = await br.ctx.newPage();
  const urls = [];
  p.on('request', (r) => urls.push(r.url()));
  await p.goto(`${server.base}/`);
  await signIn(p, tokens.read.token);
  await p.waitForSelector('.tr');
  assert.equal(await p.textContent('.tr .c-action'), 'e2e.signed');
  assert.match(await p.textContent('#whoami'), /auditor · read/);
  // A reload in the same tab keeps the session.
  await p.reload();
  await p.waitForSelector('.tr');
  // A permanent link opens straight to the event once signed in.
  const id = await p.$eval('.tr', (r) => r.dataset.id);
  await p.goto(`${server.base}/events/${id}`);
  await p.waitForSelector('.d-fields');
  assert.ok(urls.length > 5);
  assert.ok(urls.every((u) => !u.includes(tokens.read.token)), 'no URL carries the token');
  // Signing out forgets the token.
  await p.click('#signout');
  await p.waitForSelector('#signin:not([hidden])');
  assert.equal(await p.evaluate(() => sessionStorage.getItem('auditlog.token')), null);
  await p.close();
});
