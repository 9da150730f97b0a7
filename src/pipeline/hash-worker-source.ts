/**
 * The code of a hash worker thread, run with `new Worker(source, { eval: true })`: plain
 * CommonJS, so that it starts the same from the sources (tsx, vitest) and from dist/ without a
 * separate entry file or a TypeScript loader in the thread.
 *
 * workerData: `{ nice }`, the priority the thread lowers itself to first (null: keep Backer's).
 * Messages in (one port, in order): `{ op: 'open', id }`, `{ op: 'data', id, slot, length, memory? }`
 * (hash the first `length` bytes of the session's slot `slot`, a SharedArrayBuffer sent once, with
 * the slot's first use), `{ op: 'end', id }`, `{ op: 'drop', id }`. Messages out:
 * `{ op: 'ack', id, slot, length }` after each `data` (the slot may be filled again; this also
 * bounds what is in flight), `{ op: 'digest', id, size, md5, sha256 }` after `end`, and
 * `{ op: 'nice-failed', message }` when the thread could not lower its priority. Nothing is
 * transferred or allocated per batch: the slots are shared memory, reused for the whole stream.
 */
export const HASH_WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
// The added work's priority (queue.nice, src/util/work-priority.ts): on Linux this thread's alone.
// A sandbox that refuses it is reported, and hashing goes on at Backer's priority.
if (workerData && typeof workerData.nice === 'number') {
  try {
    require('node:os').setPriority(workerData.nice);
  } catch (err) {
    parentPort.postMessage({ op: 'nice-failed', message: String(err && err.message) });
  }
}
const sessions = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'open') {
    sessions.set(m.id, { md5: createHash('md5'), sha256: createHash('sha256'), size: 0, slots: [] });
  } else if (m.op === 'data') {
    const s = sessions.get(m.id);
    if (s) {
      if (m.memory) s.slots[m.slot] = new Uint8Array(m.memory);
      const bytes = s.slots[m.slot].subarray(0, m.length);
      s.md5.update(bytes);
      s.sha256.update(bytes);
      s.size += m.length;
    }
    parentPort.postMessage({ op: 'ack', id: m.id, slot: m.slot, length: m.length });
  } else if (m.op === 'end') {
    const s = sessions.get(m.id);
    sessions.delete(m.id);
    if (!s) return;
    parentPort.postMessage({ op: 'digest', id: m.id, size: s.size, md5: s.md5.digest('hex'), sha256: s.sha256.digest('hex') });
  } else if (m.op === 'drop') {
    sessions.delete(m.id);
  }
});
`;
