// The viewer's only door to the server: the /v1 API with the session's
// bearer token. The token lives in sessionStorage (this tab only) and is
// never put in a URL.

const KEY = 'auditlog.token';

export const token = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An error answer from the API: status, code, message and any extra
 *  fields (a bad filter carries `column`). */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_error';
    this.detail = e;
  }
}

/** Called when the server says the token is no longer good (401). */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

export function url(path, params = {}) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, v);
  }
  return u.pathname + u.search;
}

/** fetch() with the bearer token; the raw Response, errors not thrown. */
export function raw(path, params = {}, init = {}) {
  const headers = new Headers(init.headers || {});
  const t = token.get();
  if (t) headers.set('Authorization', `Bearer ${t}`);
  return fetch(url(path, params), { ...init, headers, cache: 'no-store' });
}

async function errorOf(res) {
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  return new ApiError(res.status, body);
}

/** JSON from the API, or an ApiError. */
export async function get(path, params = {}, init = {}) {
  const res = await raw(path, params, init);
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401) onUnauthorized(err);
    throw err;
  }
  return res.json();
}

export async function post(path, body) {
  const res = await raw(path, {}, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401) onUnauthorized(err);
    throw err;
  }
  return res.json();
}

/** A file download (export) as a Blob, with the token in the header. */
export async function blob(path, params = {}) {
  const res = await raw(path, params);
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401) onUnauthorized(err);
    throw err;
  }
  return res.blob();
}

/** Who the token is: {name, role}. An open server (no tokens) answers as
 *  its local admin; a server without /v1/whoami is treated the same when it
 *  lets us read. */
export async function whoami() {
  const res = await raw('/v1/whoami');
  if (res.ok) return res.json();
  if (res.status === 404) {
    const probe = await raw('/v1/events', { limit: 1 });
    if (probe.ok) return { name: 'local', role: 'admin' };
    throw await errorOf(probe);
  }
  throw await errorOf(res);
}
