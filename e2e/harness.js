// The end-to-end harness: builds the `auditlog` binary and the event
// generator, fills a temporary data directory with generated events, runs
// the server on a free loopback port, and opens Debian's headless Chromium
// through playwright-core. Everything it starts, it stops.

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Builds what the tests run (skipped when AUDITLOG_BIN and
 *  AUDITLOG_DUMP point at built binaries). */
export function build() {
  if (process.env.AUDITLOG_BIN && process.env.AUDITLOG_DUMP) {
    return { bin: process.env.AUDITLOG_BIN, dump: process.env.AUDITLOG_DUMP };
  }
  const cargo = (args) => execFileSync('cargo', args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  cargo(['build', '-q', '-p', 'auditlog-server', '--bin', 'auditlog']);
  cargo(['build', '-q', '-p', 'auditlog-benches', '--example', 'dump_ndjson']);
  const target = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
  return { bin: join(target, 'debug', 'auditlog'), dump: join(target, 'debug', 'examples', 'dump_ndjson') };
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** `n` generated events spread evenly over the last `days` days, ingested
 *  into `data` with the command line (before the server opens it). */
export function generate({ bin, dump }, data, n, days) {
  const start = new Date(Date.now() - days * 86400e3 + 60e3).toISOString().replace(/\.\d+Z$/, 'Z');
  const eps = n / (days * 86400);
  const file = join(data, '..', 'events.ndjson');
  const ndjson = execFileSync(dump, [String(n), start, String(eps)], { maxBuffer: 1 << 30 });
  writeFileSync(file, ndjson);
  execFileSync(bin, ['ingest', file, '--data', data], { stdio: ['ignore', 'ignore', 'pipe'] });
  return n;
}

/** A new token from `auditlog token`: {token, entry} where entry is the
 *  `[[tokens]]` block for the config file. */
export function makeToken({ bin }, name, role) {
  const r = spawnSync(bin, ['token', '--name', name, '--role', role], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`auditlog token failed: ${r.stderr}`);
  const entry = r.stderr.slice(r.stderr.indexOf('[[tokens]]')).trim();
  return { token: r.stdout.trim(), entry };
}

/** Starts `auditlog serve`; `config` is TOML text for --config (tokens). */
export async function startServer({ bin }, { data, config } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'auditlog-e2e-'));
  const dataDir = data || join(dir, 'data');
  const port = await freePort();
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir];
  if (config) {
    const path = join(dir, 'auditlog.toml');
    writeFileSync(path, config);
    args.push('--config', path);
  }
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (b) => { log += b; });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${log}`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`server did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    base,
    dir,
    data: dataDir,
    log: () => log,
    // SIGTERM, and SIGKILL after 20 s: a server that does not stop fails
    // the run rather than hanging it.
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', () => r(true)));
      child.kill('SIGTERM');
      let timer;
      const late = new Promise((r) => { timer = setTimeout(() => r(false), 20000); });
      const stopped = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`server did not stop on SIGTERM within 20 s: ${log}`);
      }
    },
    cleanup() { rmSync(dir, { recursive: true, force: true }); },
  };
}

/** A fresh headless Chromium profile; returns the persistent context. */
export async function browser(downloads) {
  const profile = mkdtempSync(join(tmpdir(), 'auditlog-chromium-'));
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 900 },
    acceptDownloads: true,
    downloadsPath: downloads,
  });
  const close = async () => {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { ctx, close };
}

/** JSON over HTTP, with an optional bearer token. */
export async function api(base, path, { method = 'GET', body, token, params, type = 'application/json' } = {}) {
  const u = new URL(path, base);
  for (const [k, v] of Object.entries(params || {})) u.searchParams.set(k, v);
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = type;
  const r = await fetch(u, { method, headers, body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)) });
  let json = null;
  try { json = await r.json(); } catch { json = null; }
  return { status: r.status, body: json };
}
