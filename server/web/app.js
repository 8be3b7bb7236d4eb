// The viewer's entry point: sign-in, the view state (kept in the URL), and
// the wiring between the filter bar, table, overview, detail panel, live
// mode and exports. Everything it shows comes from the /v1 API.

import * as api from './api.js';
import { $, el, fmtInt, toLocalInput, toast } from './util.js';
import * as F from './filter.js';
import { EventTable, compact } from './table.js';
import { renderDetail, renderDetailError } from './detail.js';
import { renderOverview, renderOverviewError } from './overview.js';
import { downloadNow, createJob, renderExports } from './exports.js';
import { Live } from './live.js';

const PAGE = 200;
/** Rows held at most; past it, the footer asks for a narrower filter. */
const MAX_ROWS = 50000;

let state = F.fromUrl();
let me = null;
let started = false;
let table = null;
let live = null;
let openId = null;
let params = {};
let composed = { text: '', offset: 0 };
let load = { gen: 0, cursor: null, loading: false, done: false, failed: false };

const eventIdFromPath = () => {
  const m = /^\/events\/([^/]+)\/?$/.exec(location.pathname);
  return m ? decodeURIComponent(m[1]) : null;
};

// ---------------------------------------------------------------- sign-in

function showSignin(message) {
  $('#app').hidden = true;
  $('#signin').hidden = false;
  const err = $('#signin-error');
  err.textContent = message || '';
  err.hidden = !message;
  $('#token').value = '';
  $('#token').focus();
}

async function boot() {
  try {
    me = await api.whoami();
  } catch (e) {
    if (e.status === 401) {
      const had = api.token.get();
      api.token.clear();
      showSignin(had ? 'That token was not accepted. Check it and try again.' : '');
    } else if (e.status === 403) {
      api.token.clear();
      showSignin(`This token may not read the log: ${e.message}`);
    } else {
      showSignin(`Cannot reach the server: ${e.message}`);
    }
    return;
  }
  if (me.role !== 'read' && me.role !== 'admin') {
    api.token.clear();
    showSignin(me.role === 'ingest'
      ? `The token "${me.name}" is an ingest token: it can send events but not read the log. Sign in with a token that has the read role.`
      : `The token "${me.name}" (role ${me.role}) may not read the log.`);
    return;
  }
  startApp();
}

$('#signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('#token').value.trim();
  if (!t) return;
  api.token.set(t);
  boot();
});

api.setUnauthorizedHandler(() => {
  if (live) live.stop();
  api.token.clear();
  showSignin('The server no longer accepts this token: sign in again.');
});

// ---------------------------------------------------------------- state

function navigate(replace = false) {
  const path = (openId ? `/events/${encodeURIComponent(openId)}` : '/') + F.toQuery(state);
  if (path === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
}

function setState(patch) {
  state = { ...state, ...patch };
  navigate();
  syncControls();
  refresh();
}

function syncControls() {
  $('#filter').value = state.q;
  $('#range').value = state.range;
  $('#custom-range').hidden = state.range !== 'custom';
  if (state.range === 'custom') {
    $('#from').value = state.from ? toLocalInput(new Date(state.from)) : '';
    $('#to').value = state.to ? toLocalInput(new Date(state.to)) : '';
  }
  $('#q-action').value = state.action;
  $('#q-actor').value = state.actor;
  $('#q-env').value = state.env;
  for (const t of document.querySelectorAll('.tab')) {
    if (t.dataset.view === state.view) t.setAttribute('aria-current', 'page');
    else t.removeAttribute('aria-current');
  }
  $('#view-events').hidden = state.view !== 'events';
  $('#view-exports').hidden = state.view !== 'exports';
}

// ---------------------------------------------------------------- filter errors

function clearFilterError() {
  $('#filter-error').hidden = true;
  $('#filter').removeAttribute('aria-invalid');
}

function showFilterError(e) {
  const col = F.userColumn(composed, state, e.detail.column);
  const box = $('#filter-error');
  // The caret shows the column: the message need not repeat it.
  const message = (e.detail.message || e.message).replace(/^bad filter: /, '').replace(/ \(at column \d+\)$/, '');
  box.querySelector('.ferr-msg').textContent = col ? message : `${message} (in the quick filters)`;
  box.querySelector('.ferr-text').textContent = col ? state.q : '';
  box.querySelector('.ferr-caret').textContent = col ? `${' '.repeat(col - 1)}^ column ${col}` : '';
  box.querySelector('pre').hidden = !col;
  box.dataset.column = col || '';
  box.hidden = false;
  const input = $('#filter');
  input.setAttribute('aria-invalid', 'true');
  if (col) {
    const at = Array.from(state.q).slice(0, col - 1).join('').length;
    input.focus();
    input.setSelectionRange(at, Math.min(state.q.length, at + 1));
  }
}

// ---------------------------------------------------------------- table

function footer() {
  const n = table.rows.length;
  let msg = n ? `${fmtInt(n)} event${n === 1 ? '' : 's'} loaded` : '';
  if (load.loading) msg += `${msg ? ' · ' : ''}loading…`;
  else if (n >= MAX_ROWS) msg += ` · showing the first ${fmtInt(MAX_ROWS)}: narrow the filter or export to see all`;
  else if (n && load.done) msg += ' · end of results';
  else if (n) msg += ' · scroll for more';
  $('#tfoot').textContent = msg;
  $('.table').setAttribute('aria-rowcount', load.done ? String(n) : '-1');
}

function emptyState() {
  const empty = $('#empty');
  if (table.rows.length || !load.done) {
    empty.hidden = true;
    return;
  }
  const actions = [];
  if (load.failed) {
    empty.replaceChildren(el('h3', { text: load.failedFilter ? 'Fix the filter to see events' : 'Events could not be loaded' }),
      el('p', { class: 'muted', text: load.failedFilter ? 'The filter bar shows where the server stopped reading it.' : load.failedMessage || '' }));
    empty.hidden = false;
    return;
  }
  if (state.range !== 'all') actions.push(el('button', { type: 'button', onclick: () => setState({ range: 'all' }) }, 'Search all time'));
  if (state.q || state.action || state.actor || state.env) {
    actions.push(el('button', { type: 'button', onclick: () => setState({ q: '', action: '', actor: '', env: '' }) }, 'Clear filters'));
  }
  const filtered = state.q || state.action || state.actor || state.env;
  empty.replaceChildren(
    el('h3', { text: filtered ? 'No events match this filter' : 'No events in this time range' }),
    el('p', { class: 'muted', text: filtered
      ? 'Nothing recorded matches the filter in the chosen time range.'
      : 'Nothing was recorded in the chosen time range. Events sent to POST /v1/events appear here.' }),
    actions.length ? el('div', { class: 'empty-actions' }, actions) : null);
  empty.hidden = false;
}

async function loadMore() {
  if (load.loading || load.done || table.rows.length >= MAX_ROWS) return;
  load.loading = true;
  const gen = load.gen;
  footer();
  let rows = [];
  try {
    const page = await api.get('/v1/events', { ...params, limit: PAGE, cursor: load.cursor });
    if (gen !== load.gen) return;
    rows = page.events.map(compact);
    load.cursor = page.next_cursor;
    load.done = !page.next_cursor;
  } catch (e) {
    if (gen !== load.gen) return;
    load.done = true;
    load.failed = true;
    load.failedFilter = e.code === 'bad_filter';
    load.failedMessage = e.message;
    if (e.code === 'bad_filter') showFilterError(e);
    else if (e.status !== 401) toast(`Could not load events: ${e.message}`, 'error');
  } finally {
    if (gen === load.gen) {
      load.loading = false;
      table.append(rows);
      footer();
      emptyState();
    }
  }
}

async function loadOverview() {
  const gen = load.gen;
  try {
    const o = await api.get('/v1/events/overview', { ...params, bucket: F.bucketFor(state), top: 8 });
    if (gen !== load.gen) return;
    renderOverview(o, {
      onAction: (x) => setState({ action: x.value }),
      onActor: (x) => setState({ actor: `${x.type}:${x.id}` }),
      onBucket: (start, bucket) => {
        const w = bucket === 'day' ? 86400e3 : 3600e3;
        setState({ range: 'custom', from: start, to: new Date(Date.parse(start) + w).toISOString() });
      },
    });
    const fill = (id, items) => $(id).replaceChildren(...items.map(([v, label]) => el('option', { value: v }, label)));
    fill('#dl-action', (o.top_actions || []).map((x) => [x.value, `${fmtInt(x.count)}`]));
    fill('#dl-actor', (o.top_actors || []).map((x) => [`${x.type}:${x.id}`, x.name || '']));
    fill('#dl-env', (o.top_environments || []).map((x) => [x.value, `${fmtInt(x.count)}`]));
  } catch (e) {
    if (gen !== load.gen) return;
    renderOverviewError(e.code === 'bad_filter' ? '' : `Overview unavailable: ${e.message}`);
  }
}

function refresh() {
  if (state.view === 'exports') {
    renderExports($('#exports-body'));
    return;
  }
  composed = F.compose(state);
  const { from, to } = F.timeRange(state);
  params = { filter: composed.text, from, to };
  load = { gen: load.gen + 1, cursor: null, loading: false, done: false, failed: false };
  clearFilterError();
  if (state.q && !F.balanced(state.q)) {
    showFilterError({ message: 'unbalanced parentheses', detail: { message: "a ')' closes more than was opened", column: 1 } });
    load.done = true;
    load.failed = true;
    load.failedFilter = true;
    table.setRows([]);
    footer();
    emptyState();
    return;
  }
  table.setRows([]);
  $('#empty').hidden = true;
  loadMore();
  loadOverview();
  if (live && live.running) startLive();
}

// ---------------------------------------------------------------- detail

async function openEvent(id, push = true) {
  openId = id;
  if (push) navigate();
  const panel = $('#detail');
  panel.classList.add('loading');
  panel.hidden = false;
  document.body.classList.add('with-detail');
  try {
    const ev = await api.get(`/v1/events/${encodeURIComponent(id)}`);
    if (openId !== id) return;
    renderDetail(panel, ev, { onClose: closeDetail });
  } catch (e) {
    if (openId !== id) return;
    renderDetailError(panel, e.status === 404 || e.code === 'bad_id' ? `No event with id ${id}.` : e.message, { onClose: closeDetail });
  } finally {
    panel.classList.remove('loading');
  }
}

function closeDetail() {
  if (!openId) return;
  openId = null;
  $('#detail').hidden = true;
  document.body.classList.remove('with-detail');
  navigate();
  $('#tbody').focus({ preventScroll: true });
}

// ---------------------------------------------------------------- live

function setLiveButton(mode, message) {
  const b = $('#live');
  b.setAttribute('aria-pressed', mode === 'off' || mode === 'error' ? 'false' : 'true');
  b.classList.toggle('on', mode === 'on');
  b.classList.toggle('retry', mode === 'retry');
  b.textContent = mode === 'on' ? 'Live ●' : mode === 'retry' ? 'Live (reconnecting…)' : 'Live';
  if (mode === 'error') toast(`Live mode stopped: ${message}`, 'error');
}

function startLive() {
  live.start(composed.text);
}

function toggleLive() {
  if (live.running) {
    live.stop();
    setLiveButton('off');
    return;
  }
  if (state.range === 'custom' && state.to) {
    toast('Live mode follows new events: pick a time range that ends now.', 'error');
    return;
  }
  setLiveButton('retry');
  startLive();
}

// ---------------------------------------------------------------- wiring

function wire() {
  table = new EventTable($('#tbody'), $('#spacer'), {
    onOpen: (row) => openEvent(row.id),
  });
  table.onNearEnd = () => loadMore();
  live = new Live({
    onEvents: (evs) => {
      const rows = evs.map(compact).reverse();
      table.prepend(rows, MAX_ROWS);
      $('#empty').hidden = true;
      footer();
    },
    onState: (mode, message) => setLiveButton(mode, message),
  });

  $('#filter-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setState({ q: $('#filter').value });
  });
  $('#range').addEventListener('change', () => {
    const v = $('#range').value;
    if (v === 'custom') {
      $('#custom-range').hidden = false;
      const to = new Date();
      const from = new Date(to.getTime() - 86400e3);
      if (!$('#from').value) $('#from').value = toLocalInput(from);
      if (!$('#to').value) $('#to').value = toLocalInput(to);
      $('#from').focus();
      return;
    }
    setState({ range: v });
  });
  const customChanged = () => {
    const f = $('#from').value;
    const t = $('#to').value;
    const from = f ? new Date(f) : null;
    const to = t ? new Date(t) : null;
    if ((from && Number.isNaN(from.getTime())) || (to && Number.isNaN(to.getTime()))) return;
    if (from && to && from > to) {
      toast('The start of the range is after its end.', 'error');
      return;
    }
    setState({ range: 'custom', from: from ? from.toISOString() : '', to: to ? to.toISOString() : '' });
  };
  $('#from').addEventListener('change', customChanged);
  $('#to').addEventListener('change', customChanged);
  for (const [id, key] of [['#q-action', 'action'], ['#q-actor', 'actor'], ['#q-env', 'env']]) {
    $(id).addEventListener('change', () => setState({ [key]: $(id).value.trim() }));
  }
  $('#clear').addEventListener('click', () => setState({ q: '', range: F.DEFAULT_RANGE, from: '', to: '', action: '', actor: '', env: '' }));
  $('#live').addEventListener('click', toggleLive);

  const menu = $('#export-menu');
  $('#export').addEventListener('click', () => {
    menu.hidden = !menu.hidden;
    $('#export').setAttribute('aria-expanded', String(!menu.hidden));
  });
  menu.addEventListener('click', async (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    menu.hidden = true;
    $('#export').setAttribute('aria-expanded', 'false');
    if (b.dataset.format) downloadNow(b.dataset.format, params);
    else if (b.dataset.job && await createJob(b.dataset.job, params)) setState({ view: 'exports' });
  });
  document.addEventListener('click', (e) => {
    if (!e.target.closest('.menu')) { menu.hidden = true; $('#export').setAttribute('aria-expanded', 'false'); }
  });

  for (const t of document.querySelectorAll('.tab')) {
    t.addEventListener('click', (e) => {
      e.preventDefault();
      setState({ view: t.dataset.view });
    });
  }
  $('#exports-refresh').addEventListener('click', () => renderExports($('#exports-body')));
  $('#signout').addEventListener('click', () => {
    live.stop();
    setLiveButton('off');
    api.token.clear();
    showSignin('Signed out.');
  });

  window.addEventListener('popstate', () => {
    state = F.fromUrl();
    syncControls();
    refresh();
    const id = eventIdFromPath();
    if (id) openEvent(id, false);
    else if (openId) { openId = null; $('#detail').hidden = true; document.body.classList.remove('with-detail'); }
  });

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || $('#app').hidden) return;
    const tag = e.target.tagName;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA') {
      if (e.key === 'Escape') e.target.blur();
      return;
    }
    const step = (d) => {
      e.preventDefault();
      table.select(table.selected < 0 ? 0 : table.selected + d);
      if (openId && table.current()) openEvent(table.current().id);
    };
    switch (e.key) {
      case '/': e.preventDefault(); $('#filter').focus(); $('#filter').select(); break;
      case 'j': case 'ArrowDown': step(1); break;
      case 'k': case 'ArrowUp': step(-1); break;
      case 'Enter': if (table.current() && e.target.tagName !== 'BUTTON' && e.target.tagName !== 'A') { e.preventDefault(); openEvent(table.current().id); } break;
      case 'Escape': if (openId) closeDetail(); else { menu.hidden = true; } break;
      default: break;
    }
  });
}

function startApp() {
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#whoami').textContent = `${me.name} · ${me.role}`;
  $('#whoami').title = api.token.get() ? 'Signed in with a token' : 'Open local server (no tokens configured)';
  $('#signout').hidden = !api.token.get();
  if (!started) {
    started = true;
    wire();
  }
  syncControls();
  refresh();
  const id = eventIdFromPath();
  if (id) openEvent(id, false);
}

boot();
