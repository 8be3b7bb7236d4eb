// Exports: download the current filter now (streamed by the server), or
// create an export job and follow it in the history, downloading it when
// it has completed.

import * as api from './api.js';
import { el, fmtInt, fmtBytes, localTime, saveBlob, stamp, toast } from './util.js';

const EXT = { csv: 'csv', ndjson: 'ndjson', json: 'json' };

/** Downloads the events matching `params` ({filter, from, to}) now. */
export async function downloadNow(format, params) {
  toast(`Preparing ${format.toUpperCase()} export…`);
  try {
    const blob = await api.blob('/v1/export', { format, ...params });
    saveBlob(blob, `auditlog-${stamp()}.${EXT[format] || format}`);
    toast(`Export downloaded (${fmtBytes(blob.size)})`);
  } catch (e) {
    toast(`Export failed: ${e.message}`, 'error');
  }
}

/** Creates an export job; resolves to the job or null. */
export async function createJob(format, params) {
  const name = `${params.filter || 'all events'} · ${new Date().toLocaleString()}`;
  try {
    const job = await api.post('/v1/exports', { name, format, ...params });
    toast('Export job created: see Exports');
    return job;
  } catch (e) {
    toast(`Export job failed: ${e.message}`, 'error');
    return null;
  }
}

async function downloadJob(job) {
  try {
    const blob = await api.blob(`/v1/exports/${encodeURIComponent(job.id)}/download`);
    saveBlob(blob, `auditlog-export-${job.id}.${EXT[job.format] || job.format}`);
  } catch (e) {
    toast(`Download failed: ${e.message}`, 'error');
  }
}

function when(t) {
  return t ? localTime(new Date(t)) : '';
}

let timer = 0;

/** Fills the history view; polls while a job is queued or running. */
export async function renderExports(body) {
  clearTimeout(timer);
  let list;
  try {
    list = (await api.get('/v1/exports')).exports || [];
  } catch (e) {
    body.replaceChildren(el('p', { class: 'error', text: e.status === 404
      ? 'This server has no export jobs (GET /v1/exports is not available).'
      : `Could not load exports: ${e.message}` }));
    return;
  }
  if (!list.length) {
    body.replaceChildren(el('div', { class: 'empty-block' },
      el('h3', { text: 'No exports yet' }),
      el('p', { class: 'muted', text: 'Use Export ▾ on the Events view to export the current filter.' })));
    return;
  }
  const table = el('table', { class: 'jobs' },
    el('thead', {}, el('tr', {}, ...['Name', 'Format', 'Status', 'Rows', 'Size', 'Requested by', 'Created', 'Finished', '']
      .map((h) => el('th', { text: h })))),
    el('tbody', {}, ...list.map((j) => el('tr', { dataset: { id: j.id } },
      el('td', { class: 'j-name', title: `filter: ${j.filter || '(none)'}\nfrom: ${j.from || '-'}\nto: ${j.to || '-'}`, text: j.name || j.id }),
      el('td', { text: (j.format || '').toUpperCase() }),
      el('td', {}, el('span', { class: `status s-${j.status}`, text: j.status }), j.error ? el('div', { class: 'error small', text: j.error }) : null),
      el('td', { class: 'num', text: j.rows !== null && j.rows !== undefined ? fmtInt(j.rows) : '' }),
      el('td', { class: 'num', text: fmtBytes(j.bytes) }),
      el('td', { text: j.requested_by || '' }),
      el('td', { text: when(j.created_at) }),
      el('td', { text: when(j.finished_at) }),
      el('td', {}, j.status === 'completed'
        ? el('button', { type: 'button', class: 'primary small', onclick: () => downloadJob(j) }, 'Download')
        : null)))));
  body.replaceChildren(table);
  if (list.some((j) => j.status === 'queued' || j.status === 'running')) {
    timer = setTimeout(() => { if (!body.closest('[hidden]')) renderExports(body); }, 2000);
  }
}
