// The overview above the table: events per bucket as an inline SVG bar
// chart, and the top actions and actors, each clickable into a filter.

import { el, svg, fmtInt, localTime, shortLocal } from './util.js';

const W = 800;
const H = 120;
const PAD_L = 44;
const PAD_B = 18;

function chart(o, onBucket) {
  const b = o.buckets || [];
  if (!b.length) return el('div', { class: 'muted ov-none', text: 'No events to chart.' });
  const max = Math.max(1, ...b.map((x) => x.count));
  const plotW = W - PAD_L;
  const plotH = H - PAD_B;
  const bw = plotW / b.length;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'ov-bars', role: 'img', 'aria-label': `Events per ${o.bucket}` });
  // Grid line and y labels: the maximum and zero.
  root.append(
    svg('line', { x1: PAD_L, x2: W, y1: 1, y2: 1, class: 'grid' }),
    svg('line', { x1: PAD_L, x2: W, y1: plotH, y2: plotH, class: 'axis' }),
  );
  const withDay = o.bucket === 'day' || b.length > 24;
  b.forEach((x, i) => {
    const h = (x.count / max) * (plotH - 2);
    const start = new Date(x.start);
    const rect = svg('rect', {
      x: PAD_L + i * bw + Math.min(1, bw * 0.1),
      y: plotH - h,
      width: Math.max(0.5, bw - Math.min(2, bw * 0.2)),
      height: Math.max(h, x.count ? 1 : 0),
      class: 'bar',
    }, svg('title', {}, `${localTime(start)}: ${fmtInt(x.count)} event${x.count === 1 ? '' : 's'}`));
    rect.addEventListener('click', () => onBucket(x.start, o.bucket));
    root.append(rect);
  });
  const labels = el('div', { class: 'ov-axis' });
  const picks = [0, Math.floor(b.length / 2), b.length - 1].filter((v, i, a) => a.indexOf(v) === i);
  for (const i of picks) {
    const d = new Date(b[i].start);
    labels.append(el('span', { text: o.bucket === 'day' ? d.toLocaleDateString() : shortLocal(d, withDay) }));
  }
  return el('div', { class: 'ov-plot' },
    el('div', { class: 'ov-y' }, el('span', { text: fmtInt(max) }), el('span', { text: '0' })),
    root, labels);
}

function topList(list, items, label, onPick) {
  list.replaceChildren();
  const max = Math.max(1, ...items.map((x) => x.count));
  if (!items.length) list.append(el('li', { class: 'muted', text: '—' }));
  for (const x of items) {
    const bar = el('span', { class: 'tbar' });
    bar.style.width = `${(x.count / max) * 100}%`;
    list.append(el('li', {},
      el('button', { type: 'button', class: 'linklike', title: `Filter on ${label(x)}`, onclick: () => onPick(x) },
        bar, el('span', { class: 'tlabel', text: label(x) }), el('span', { class: 'tcount', text: fmtInt(x.count) }))));
  }
}

/** Draws the overview `o` (the /v1/events/overview answer). */
export function renderOverview(o, { onAction, onActor, onBucket }) {
  document.getElementById('ov-total').textContent = `${fmtInt(o.total)} event${o.total === 1 ? '' : 's'}`;
  const note = [];
  note.push(`per ${o.bucket}`);
  if (!o.complete) {
    note.push(o.skipped_segments
      ? `partial: the filter needs event bodies read and the newest ${fmtInt(o.decoded_events)} candidates were counted`
      : 'top lists partial: too many distinct values');
  }
  document.getElementById('ov-note').textContent = note.join(' · ');
  document.getElementById('ov-svg').replaceChildren(chart(o, onBucket));
  topList(document.getElementById('ov-actions'), o.top_actions || [], (x) => x.value, onAction);
  topList(document.getElementById('ov-actors'), o.top_actors || [],
    (x) => (x.name ? `${x.name} (${x.type}:${x.id})` : `${x.type}:${x.id}`), onActor);
}

export function renderOverviewError(message) {
  document.getElementById('ov-total').textContent = '–';
  document.getElementById('ov-note').textContent = message;
  document.getElementById('ov-svg').replaceChildren();
  document.getElementById('ov-actions').replaceChildren();
  document.getElementById('ov-actors').replaceChildren();
}
