// What is being looked at: the filter text, the time range and the quick
// filters, kept in the URL so a view can be shared; and how they compose
// into the one filter the API receives.

const PRESETS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };
export const DEFAULT_RANGE = '7d';

/** The view state from the current URL. */
export function fromUrl(loc = location) {
  const p = new URLSearchParams(loc.search);
  const range = p.get('range') || DEFAULT_RANGE;
  return {
    q: p.get('q') || '',
    range: range in PRESETS || range === 'all' || range === 'custom' ? range : DEFAULT_RANGE,
    from: p.get('from') || '',
    to: p.get('to') || '',
    action: p.get('action') || '',
    actor: p.get('actor') || '',
    env: p.get('env') || '',
    view: p.get('view') === 'exports' ? 'exports' : 'events',
  };
}

/** The query string for a view state (defaults left out). */
export function toQuery(s) {
  const p = new URLSearchParams();
  if (s.view === 'exports') p.set('view', 'exports');
  if (s.q) p.set('q', s.q);
  if (s.range !== DEFAULT_RANGE) p.set('range', s.range);
  if (s.range === 'custom') {
    if (s.from) p.set('from', s.from);
    if (s.to) p.set('to', s.to);
  }
  if (s.action) p.set('action', s.action);
  if (s.actor) p.set('actor', s.actor);
  if (s.env) p.set('env', s.env);
  const q = p.toString();
  return q ? `?${q}` : '';
}

/** `from`/`to` as RFC 3339 for the API (a preset ends now: open `to`). */
export function timeRange(s, now = Date.now()) {
  if (s.range in PRESETS) return { from: new Date(now - PRESETS[s.range]).toISOString(), to: '' };
  if (s.range === 'custom') return { from: s.from, to: s.to };
  return { from: '', to: '' };
}

/** Chart bucket for a range: hours up to a week, days beyond. */
export function bucketFor(s) {
  if (s.range === '1h' || s.range === '24h' || s.range === '7d') return 'hour';
  if (s.range === 'custom' && s.from && s.to) {
    return Date.parse(s.to) - Date.parse(s.from) <= 7 * 86400e3 ? 'hour' : 'day';
  }
  return 'day';
}

/** A string literal of the filter language (`''` is one quote). */
export function quote(v) {
  return `'${String(v).replaceAll("'", "''")}'`;
}

/** The filter terms of the quick filters. An actor is `type:id` or an id. */
export function quickTerms(s) {
  const terms = [];
  if (s.action) terms.push(`action_name = ${quote(s.action)}`);
  if (s.actor) {
    const m = /^([A-Za-z0-9_.-]+):(.+)$/.exec(s.actor);
    if (m) terms.push(`actor.type = ${quote(m[1])} AND actor.id = ${quote(m[2])}`);
    else terms.push(`actor.id = ${quote(s.actor)}`);
  }
  if (s.env) terms.push(`environment.id = ${quote(s.env)}`);
  return terms;
}

/** Characters (code points), as the server counts columns. */
export const chars = (t) => Array.from(t).length;

/** True when parentheses outside string literals never close more than
 *  they opened: wrapping such text in ( ) keeps its meaning. */
export function balanced(t) {
  let depth = 0;
  let quoteCh = '';
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (quoteCh) {
      // A doubled quote stands for one and keeps the literal open: the
      // second of the pair simply reopens it on the next character.
      if (c === quoteCh) quoteCh = '';
    } else if (c === "'" || c === '"') quoteCh = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth < 0) return false;
  }
  return true;
}

/** The filter sent to the API, and where the user's text starts in it
 *  (so an error column can be mapped back onto the input). */
export function compose(s) {
  const q = s.q.trim() ? s.q : '';
  const quick = quickTerms(s);
  if (!quick.length) return { text: q, offset: 0 };
  if (!q) return { text: quick.join(' AND '), offset: null };
  return { text: `(${q}) AND ${quick.join(' AND ')}`, offset: 1 };
}

/** The column in the user's text for a server error column, or null when
 *  the error is in the part the quick filters added. */
export function userColumn(composed, s, column) {
  if (composed.offset === null || !column) return null;
  const col = column - composed.offset;
  if (col < 1 || col > chars(s.q) + 1) return null;
  return col;
}
