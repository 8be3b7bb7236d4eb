// The viewer's filter composition (server/web/filter.js), run in node:
// quick filters join the typed filter without changing its meaning, an
// error column maps back onto the typed text, and the URL round-trips.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../server/web/filter.js';

const base = { q: '', range: '7d', from: '', to: '', action: '', actor: '', env: '', view: 'events' };

test('quotes double single quotes, as the filter language wants', () => {
  assert.equal(F.quote("it's"), "'it''s'");
  assert.equal(F.quote('a\\b'), "'a\\b'");
});

test('quick filters compose with AND, the typed text in parentheses', () => {
  assert.deepEqual(F.compose({ ...base, q: "actor.type = 'user' OR x = 1" }), { text: "actor.type = 'user' OR x = 1", offset: 0 });
  const c = F.compose({ ...base, q: "a = 1 OR b = 2", action: 'items.update', actor: 'user:42', env: "o'k" });
  assert.equal(c.text, "(a = 1 OR b = 2) AND action_name = 'items.update' AND actor.type = 'user' AND actor.id = '42' AND environment.id = 'o''k'");
  assert.equal(c.offset, 1);
  assert.deepEqual(F.compose({ ...base, actor: '4845293' }), { text: "actor.id = '4845293'", offset: null });
});

test('an error column maps back onto the typed text, in characters', () => {
  const s = { ...base, q: "é = 'x' AND AND", action: 'a' };
  const c = F.compose(s);
  // The server counts characters; the second AND starts at character 13.
  assert.equal(F.userColumn(c, s, 14), 13);
  assert.equal(F.userColumn(c, s, 1), null, 'the opening parenthesis is not the user text');
  assert.equal(F.userColumn(c, s, 40), null, 'past the text: in the quick filters');
  assert.equal(F.userColumn(F.compose({ ...base, q: 'x' }), { ...base, q: 'x' }, 1), 1);
});

test('parentheses that close more than they open are caught before wrapping', () => {
  assert.equal(F.balanced("a = 'x') OR (b = 'y'"), false);
  assert.equal(F.balanced("a = ')' AND (b = 'it''s)')"), true);
  assert.equal(F.balanced('(a = 1) OR (b = 2)'), true);
});

test('the view state round-trips through the URL, defaults left out', () => {
  const s = { ...base, q: "action_name = 'x'", range: 'custom', from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z', actor: 'user:1' };
  const q = F.toQuery(s);
  assert.deepEqual(F.fromUrl({ search: q }), s);
  assert.equal(F.toQuery(base), '');
  assert.equal(F.fromUrl({ search: '?range=bogus' }).range, F.DEFAULT_RANGE);
});

test('presets end now; buckets are hours up to a week', () => {
  const now = Date.parse('2026-05-01T12:00:00Z');
  assert.deepEqual(F.timeRange({ ...base, range: '24h' }, now), { from: '2026-04-30T12:00:00.000Z', to: '' });
  assert.deepEqual(F.timeRange({ ...base, range: 'all' }, now), { from: '', to: '' });
  assert.equal(F.bucketFor({ ...base, range: '7d' }), 'hour');
  assert.equal(F.bucketFor({ ...base, range: '30d' }), 'day');
  assert.equal(F.bucketFor({ ...base, range: 'custom', from: '2026-01-01T00:00:00Z', to: '2026-01-03T00:00:00Z' }), 'hour');
});
