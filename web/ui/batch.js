// batch.js - collects the core's events and hands them on in batches: at
// most every `ms` milliseconds, or as soon as `max` are waiting (then on the
// next task, so a synchronous flood still yields to input and painting).
// The UI applies a whole batch to its model and renders once, so a burst of
// a thousand messages costs twenty renders, not a thousand.

export class EventBatcher {
  constructor(flush, { max = 50, ms = 100 } = {}) {
    this.flushFn = flush;
    this.max = max;
    this.ms = ms;
    this.queue = [];
    this.timer = null;
    this.soon = false;
  }

  push(ev) {
    this.queue.push(ev);
    if (this.queue.length >= this.max) {
      if (!this.soon) {
        this.soon = true;
        setTimeout(() => this.flush(), 0);
      }
    } else if (!this.timer && !this.soon) {
      this.timer = setTimeout(() => this.flush(), this.ms);
    }
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    this.soon = false;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.max);
      try {
        this.flushFn(batch);
      } catch (e) {
        console.error('rendering a batch of events failed', e);
      }
      // more than one batch waiting: the rest goes on a later task
      if (this.queue.length) {
        this.soon = true;
        setTimeout(() => this.flush(), 0);
        return;
      }
    }
  }
}
