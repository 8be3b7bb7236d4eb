// Live mode: follows GET /v1/tail (Server-Sent Events) with fetch() and a
// stream reader, because EventSource cannot send the Authorization header.
// Reconnects with the last event's id (Last-Event-ID) after a drop.

import * as api from './api.js';

export class Live {
  constructor({ onEvents, onState }) {
    this.onEvents = onEvents;
    this.onState = onState;
    this.ctrl = null;
    this.lastId = '';
    this.running = false;
  }

  start(filter) {
    this.stop();
    this.running = true;
    this.filter = filter;
    this.lastId = '';
    this.loop();
  }

  stop() {
    this.running = false;
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
  }

  async loop() {
    let delay = 500;
    while (this.running) {
      const ctrl = new AbortController();
      this.ctrl = ctrl;
      try {
        const headers = { accept: 'text/event-stream' };
        if (this.lastId) headers['Last-Event-ID'] = this.lastId;
        const res = await api.raw('/v1/tail', { filter: this.filter }, { headers, signal: ctrl.signal });
        if (!res.ok) {
          let msg = `HTTP ${res.status}`;
          try { msg = (await res.json()).error.message; } catch { /* keep the status */ }
          this.onState('error', res.status === 404 ? 'this server has no live tail (/v1/tail)' : msg);
          if (res.status >= 400 && res.status < 500) { this.running = false; return; }
        } else {
          this.onState('on');
          delay = 500;
          await this.read(res.body.getReader());
        }
      } catch (e) {
        if (!this.running) return;
        this.onState('retry', e.message);
      }
      if (!this.running) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buf = '';
    let batch = [];
    let flush = 0;
    const emit = () => { flush = 0; if (batch.length) { const b = batch; batch = []; this.onEvents(b); } };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
        const msg = { event: 'message', data: [], id: null };
        for (const line of block.split(/\r?\n/)) {
          if (!line || line.startsWith(':')) continue;
          const i = line.indexOf(':');
          const k = i < 0 ? line : line.slice(0, i);
          const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (k === 'data') msg.data.push(v);
          else if (k === 'event') msg.event = v;
          else if (k === 'id') msg.id = v;
        }
        if (msg.id) this.lastId = msg.id;
        if (msg.event === 'event' || (msg.event === 'message' && msg.data.length)) {
          try { batch.push(JSON.parse(msg.data.join('\n'))); } catch { /* not an event */ }
        }
      }
      // Many events at once are drawn together, once per frame.
      if (batch.length && !flush) flush = requestAnimationFrame(emit);
    }
    emit();
  }
}
