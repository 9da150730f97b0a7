/**
 * The code of a hash worker thread, run with `new Worker(source, { eval: true })`: plain
 * CommonJS, so that it starts the same from the sources (tsx, vitest) and from dist/ without a
 * separate entry file or a TypeScript loader in the thread.
 *
 * Messages in (one port, in order): `{ op: 'open', id }`, `{ op: 'data', id, buf, length }` (an
 * ArrayBuffer transferred to the thread, its first `length` bytes hashed), `{ op: 'end', id }`,
 * `{ op: 'drop', id }`. Messages out: `{ op: 'ack', id, buf, length }` after each `data`, the
 * buffer transferred back for reuse (this also bounds what is in flight), and
 * `{ op: 'digest', id, size, md5, sha256 }` after `end`.
 */
export const HASH_WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const sessions = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'open') {
    sessions.set(m.id, { md5: createHash('md5'), sha256: createHash('sha256'), size: 0 });
  } else if (m.op === 'data') {
    const s = sessions.get(m.id);
    if (!s) {
      parentPort.postMessage({ op: 'ack', id: m.id, buf: m.buf, length: m.length }, [m.buf]);
      return;
    }
    const bytes = new Uint8Array(m.buf, 0, m.length);
    s.md5.update(bytes);
    s.sha256.update(bytes);
    s.size += m.length;
    parentPort.postMessage({ op: 'ack', id: m.id, buf: m.buf, length: m.length }, [m.buf]);
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
