// The detail panel: every field of one event, its payloads as JSON trees,
// a copy button and the event's permanent link (/events/{id}).

import { el, localTime, text, copyText, toast } from './util.js';
import { jsonTree } from './jsonview.js';

const KNOWN = new Set(['id', 'occurred_at', 'action_name', 'actor', 'role', 'environment',
  'request', 'response', 'error', 'description']);

function field(label, value, opts = {}) {
  if (value === undefined || value === null || value === '') {
    if (!opts.always) return null;
    value = '—';
  }
  return [el('dt', { text: label }), el('dd', { class: opts.mono ? 'mono' : '', title: opts.title }, value)];
}

function section(title, value, openDepth = 3) {
  if (value === undefined) return null;
  return el('section', { class: 'd-section' }, el('h3', { text: title }),
    value !== null && typeof value === 'object' ? jsonTree(value, openDepth) : el('div', { class: 'mono', text: text(value) }));
}

export function permalink(id) {
  return `${location.origin}/events/${encodeURIComponent(id)}`;
}

/** Fills `panel` with `ev`; `onClose` is called by the close button. */
export function renderDetail(panel, ev, { onClose }) {
  const actor = ev.actor || {};
  const req = ev.request || {};
  const res = ev.response || {};
  const env = ev.environment;
  const role = ev.role;
  const when = new Date(ev.occurred_at);
  const link = permalink(ev.id);
  const err = ev.error ?? res.error;
  const reqRest = { ...req };
  delete reqRest.payload;
  const resRest = { ...res };
  delete resRest.payload;
  const others = Object.fromEntries(Object.entries(ev).filter(([k]) => !KNOWN.has(k)));

  panel.replaceChildren(
    el('header', { class: 'd-head' },
      el('div', {},
        el('h2', { text: ev.action_name || '(no action)' }),
        el('div', { class: 'muted', title: `${ev.occurred_at} UTC` }, localTime(when), ' local · ', ev.occurred_at, ' UTC')),
      el('div', { class: 'd-actions' },
        el('button', {
          type: 'button', title: 'Copy the event as JSON',
          onclick: async () => toast(await copyText(JSON.stringify(ev, null, 2)) ? 'Event JSON copied' : 'Copy failed', 'info'),
        }, 'Copy JSON'),
        el('button', {
          type: 'button', title: 'Copy the permanent link to this event',
          onclick: async () => toast(await copyText(link) ? 'Link copied' : 'Copy failed', 'info'),
        }, 'Copy link'),
        el('a', { class: 'button', href: `/events/${encodeURIComponent(ev.id)}`, target: '_blank', rel: 'noopener', title: 'Open the permanent link in a new tab' }, 'Permalink'),
        el('button', { type: 'button', class: 'ghost close', 'aria-label': 'Close (Esc)', title: 'Close (Esc)', onclick: onClose }, '×'))),
    el('div', { class: 'd-body' },
      el('dl', { class: 'd-fields' },
        field('ID', ev.id, { mono: true }),
        field('Occurred', `${localTime(when)} (local), ${ev.occurred_at} (UTC)`),
        field('Action', ev.action_name, { mono: true }),
        field('Description', ev.description),
        field('Actor', [el('span', { class: 'badge', text: text(actor.type) }), ' ', text(actor.name || ''), actor.name ? ' · ' : '', el('span', { class: 'mono', text: `id ${text(actor.id)}` })]),
        field('Role', role && typeof role === 'object' ? `${text(role.name ?? '')}${role.id !== undefined ? ` (id ${text(role.id)})` : ''}` : text(role), { always: true }),
        field('Environment', env && typeof env === 'object' ? `${text(env.id)}${env.primary ? ' (primary)' : ''}` : text(env)),
        field('Request', req.method || req.path ? `${text(req.method)} ${text(req.path)}` : null, { mono: true }),
        field('Request ID', req.id, { mono: true }),
        field('IP', req.ip ?? ev.ip, { mono: true }),
        field('User agent', req.user_agent),
        field('Status', res.status !== undefined ? text(res.status) : null, { mono: true }),
        field('Error', err !== undefined && err !== null ? text(err) : null),
        Object.keys(reqRest).filter((k) => !['method', 'path', 'id', 'ip', 'user_agent'].includes(k))
          .flatMap((k) => field(`request.${k}`, text(reqRest[k]), { mono: true }) || []),
        Object.keys(resRest).filter((k) => !['status', 'error'].includes(k))
          .flatMap((k) => field(`response.${k}`, text(resRest[k]), { mono: true }) || [])),
      Object.keys(others).length ? section('Other fields', others) : null,
      section('Request payload', req.payload),
      section('Response payload', res.payload),
      el('details', { class: 'd-raw' }, el('summary', { text: 'Whole event (JSON)' }), jsonTree(ev, 1)),
      el('p', { class: 'd-link muted' }, 'Permanent link: ', el('a', { href: `/events/${encodeURIComponent(ev.id)}`, class: 'mono', text: link }))),
  );
  panel.hidden = false;
}

export function renderDetailError(panel, message, { onClose }) {
  panel.replaceChildren(
    el('header', { class: 'd-head' }, el('h2', { text: 'Event not available' }),
      el('div', { class: 'd-actions' }, el('button', { type: 'button', class: 'ghost close', 'aria-label': 'Close', onclick: onClose }, '×'))),
    el('div', { class: 'd-body' }, el('p', { class: 'error', text: message })));
  panel.hidden = false;
}
