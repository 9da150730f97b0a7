import type { IncomingMessage } from 'node:http';
import { openRequest } from './socket-http.js';

/** One message of a server-sent event stream: an event (id, type, data) or a comment. */
export type SseMessage = { kind: 'event'; id: number; event: string; data: unknown; at: number } | { kind: 'comment'; text: string; at: number };

export interface SseClient {
  res: IncomingMessage;
  messages: SseMessage[];
  /** Resolves with the first message (seen so far or later) that matches; rejects after `timeoutMs`. */
  waitFor(match: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  close(): void;
}

function parse(block: string, at: number): SseMessage | null {
  const lines = block.split('\n');
  if (lines.every((l) => l.startsWith(':'))) return { kind: 'comment', text: lines.map((l) => l.slice(1).trim()).join('\n'), at };
  const field = (name: string): string | undefined => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
  const data = field('data');
  if (data === undefined) return null;
  return { kind: 'event', id: Number(field('id')), event: field('event') ?? 'message', data: JSON.parse(data) as unknown, at };
}

/** Subscribes to `GET /v1/events` (or `path`) on the daemon's socket and records every message with its arrival time. */
export async function subscribe(socket: string, path = '/v1/events'): Promise<SseClient> {
  const { res, abort } = await openRequest(socket, 'GET', path);
  const messages: SseMessage[] = [];
  const waiters: { match: (m: SseMessage) => boolean; resolve: (m: SseMessage) => void }[] = [];
  let buffer = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const message = parse(buffer.slice(0, end), Date.now());
      buffer = buffer.slice(end + 2);
      if (message === null) continue;
      messages.push(message);
      for (const w of waiters.filter((x) => x.match(message))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(message);
      }
    }
  });
  res.on('error', () => undefined);
  return {
    res,
    messages,
    waitFor(match, timeoutMs = 30_000) {
      const seen = messages.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(messages.slice(-20))}`)), timeoutMs);
        waiters.push({
          match,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      });
    },
    close: abort,
  };
}
