// The events table: a virtual list. Only the rows in view (plus a margin)
// exist in the DOM, laid out at fixed heights inside a spacer as tall as
// every loaded row, so scrolling through tens of thousands of events stays
// smooth. Rows hold a compact summary; the detail panel fetches the event.

import { el, localTime, text } from './util.js';

export const ROW_H = 32;
const OVERSCAN = 12;

/** The few fields a row shows, from a stored event. */
export function compact(ev) {
  const actor = ev.actor || {};
  const req = ev.request || {};
  const res = ev.response || {};
  const role = ev.role && typeof ev.role === 'object' ? (ev.role.name ?? ev.role.id) : ev.role;
  let error = ev.error ?? res.error ?? '';
  if (error && typeof error === 'object') error = error.message ?? error.code ?? JSON.stringify(error);
  const ip = req.ip ?? ev.ip ?? ev.ip_address ?? '';
  return {
    id: ev.id,
    at: ev.occurred_at,
    action: ev.action_name ?? '',
    actorType: text(actor.type),
    actorId: text(actor.id),
    actorName: text(actor.name),
    role: text(role),
    env: ev.environment && typeof ev.environment === 'object' ? text(ev.environment.id) : text(ev.environment),
    method: text(req.method),
    path: text(req.path),
    ip: text(ip),
    status: text(res.status),
    error: text(error),
  };
}

function statusClass(s) {
  const n = Number(s);
  if (n >= 500) return 'st st-5';
  if (n >= 400) return 'st st-4';
  if (n >= 200 && n < 400) return 'st st-2';
  return 'st';
}

export class EventTable {
  constructor(body, spacer, { onOpen, onSelect }) {
    this.body = body;
    this.spacer = spacer;
    this.onOpen = onOpen;
    this.onSelect = onSelect || (() => {});
    this.rows = [];
    this.selected = -1;
    this.fresh = new Set();
    this.pool = new Map(); // index -> element
    this.onNearEnd = () => {};
    this.frame = 0;
    body.addEventListener('scroll', () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(body);
    body.addEventListener('click', (e) => {
      const tr = e.target.closest('.tr');
      if (!tr) return;
      const i = Number(tr.dataset.index);
      this.select(i, false);
      this.onOpen(this.rows[i]);
    });
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  setRows(rows) {
    this.rows = rows;
    this.selected = -1;
    this.fresh.clear();
    for (const node of this.pool.values()) node.remove();
    this.pool.clear();
    this.body.scrollTop = 0;
    this.render();
  }

  append(rows) {
    this.rows.push(...rows);
    this.render();
  }

  /** New events on top (live mode); the rows in view stay where they are. */
  prepend(rows, cap) {
    if (!rows.length) return;
    const atTop = this.body.scrollTop < ROW_H;
    this.rows.unshift(...rows);
    for (const r of rows) this.fresh.add(r.id);
    if (this.rows.length > cap) this.rows.length = cap;
    if (this.selected >= 0) this.selected += rows.length;
    for (const node of this.pool.values()) node.remove();
    this.pool.clear();
    if (!atTop) this.body.scrollTop += rows.length * ROW_H;
    this.render();
    setTimeout(() => { for (const r of rows) this.fresh.delete(r.id); this.repaint(); }, 2500);
  }

  repaint() {
    for (const node of this.pool.values()) node.remove();
    this.pool.clear();
    this.render();
  }

  render() {
    const n = this.rows.length;
    this.spacer.style.height = `${n * ROW_H}px`;
    const top = this.body.scrollTop;
    const height = this.body.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    for (const [i, node] of this.pool) {
      if (i < first || i >= last) { node.remove(); this.pool.delete(i); }
    }
    for (let i = first; i < last; i++) {
      let node = this.pool.get(i);
      if (!node) {
        node = this.row(this.rows[i], i);
        this.pool.set(i, node);
        this.spacer.append(node);
      }
      node.classList.toggle('selected', i === this.selected);
    }
    if (n && last >= n - OVERSCAN) this.onNearEnd();
  }

  row(r, i) {
    const d = new Date(r.at);
    const tr = el('div', {
      class: `tr${this.fresh.has(r.id) ? ' fresh' : ''}`,
      role: 'row',
      'aria-rowindex': i + 1,
      dataset: { index: i, id: r.id },
    },
    el('span', { role: 'gridcell', class: 'c-time', title: `${r.at} (UTC)`, text: localTime(d) }),
    el('span', { role: 'gridcell', class: 'c-action', title: r.action, text: r.action }),
    el('span', { role: 'gridcell', class: 'c-actor', title: `${r.actorType}:${r.actorId}${r.actorName ? ` (${r.actorName})` : ''}` },
      el('span', { class: 'badge', text: r.actorType }), ' ', r.actorName || r.actorId),
    el('span', { role: 'gridcell', class: 'c-role', title: r.role, text: r.role || '—' }),
    el('span', { role: 'gridcell', class: 'c-env', title: r.env, text: r.env }),
    el('span', { role: 'gridcell', class: 'c-req', title: `${r.method} ${r.path}` },
      r.method ? el('span', { class: `method m-${r.method.toLowerCase()}`, text: r.method }) : null, ' ', r.path),
    el('span', { role: 'gridcell', class: 'c-ip', text: r.ip }),
    el('span', { role: 'gridcell', class: 'c-status' }, r.status ? el('span', { class: statusClass(r.status), text: r.status }) : ''),
    el('span', { role: 'gridcell', class: 'c-error', title: r.error, text: r.error }));
    tr.style.top = `${i * ROW_H}px`;
    return tr;
  }

  select(i, scroll = true) {
    if (!this.rows.length) return;
    i = Math.max(0, Math.min(this.rows.length - 1, i));
    this.selected = i;
    if (scroll) {
      const top = i * ROW_H;
      const b = this.body;
      if (top < b.scrollTop) b.scrollTop = top;
      else if (top + ROW_H > b.scrollTop + b.clientHeight) b.scrollTop = top + ROW_H - b.clientHeight;
    }
    this.render();
    this.onSelect(this.rows[i]);
  }

  current() {
    return this.selected >= 0 ? this.rows[this.selected] : null;
  }
}
