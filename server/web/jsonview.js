// A JSON value as a collapsible, syntax-coloured tree. Objects and arrays
// are <details> elements whose children are built when first opened, so a
// large payload costs nothing until someone looks inside it.

import { el } from './util.js';

function scalar(v) {
  if (v === null) return el('span', { class: 'j-null', text: 'null' });
  switch (typeof v) {
    case 'string': return el('span', { class: 'j-str', text: JSON.stringify(v) });
    case 'number': return el('span', { class: 'j-num', text: String(v) });
    case 'boolean': return el('span', { class: 'j-bool', text: String(v) });
    default: return el('span', { text: String(v) });
  }
}

function preview(v) {
  if (Array.isArray(v)) return `[${v.length} item${v.length === 1 ? '' : 's'}]`;
  const n = Object.keys(v).length;
  return `{${n} key${n === 1 ? '' : 's'}}`;
}

function node(key, v, depth, openDepth) {
  const label = key === null ? null : el('span', { class: 'j-key', text: key });
  if (v === null || typeof v !== 'object') {
    return el('div', { class: 'j-row' }, label, label && el('span', { class: 'j-punct', text: ': ' }), scalar(v));
  }
  const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
  const open = Array.isArray(v) ? '[' : '{';
  const close = Array.isArray(v) ? ']' : '}';
  if (entries.length === 0) {
    return el('div', { class: 'j-row' }, label, label && el('span', { class: 'j-punct', text: ': ' }),
      el('span', { class: 'j-punct', text: open + close }));
  }
  const details = el('details', { class: 'j-node' });
  const summary = el('summary', {}, label, label && el('span', { class: 'j-punct', text: ': ' }),
    el('span', { class: 'j-punct', text: open }), el('span', { class: 'j-preview', text: ` ${preview(v)} ` }),
    el('span', { class: 'j-punct j-close-inline', text: close }));
  details.append(summary);
  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    const body = el('div', { class: 'j-children' });
    for (const [k, x] of entries) body.append(node(Array.isArray(v) ? null : k, x, depth + 1, openDepth));
    details.append(body, el('div', { class: 'j-punct j-close', text: close }));
  };
  details.addEventListener('toggle', () => { if (details.open) build(); });
  if (depth < openDepth) {
    build();
    details.open = true;
  }
  return details;
}

/** The tree for `value`, opened `openDepth` levels deep. */
export function jsonTree(value, openDepth = 2) {
  return el('div', { class: 'json' }, node(null, value, 0, openDepth));
}
