// The live event stream (GET /v1/events) read with fetch + ReadableStream: EventSource cannot send an
// Authorization header, and the token must never go into a URL. Reconnects with backoff.

export interface BackerEvent { type: string; [key: string]: unknown }

export interface StreamHandlers {
  onEvent(event: BackerEvent): void;
  /** true once a stream is open, false when it ends or cannot be opened. */
  onConnected(connected: boolean): void;
  /** A 401/403: the token is no longer accepted; the stream stops. */
  onRefused(status: number): void;
}

/** Splits an SSE byte stream into messages and hands each `data:` JSON to onEvent. */
export async function readStream(body: ReadableStream<Uint8Array>, onEvent: (e: BackerEvent) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = message
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (data !== '') onEvent(JSON.parse(data) as BackerEvent);
    }
  }
}

/** Opens the stream and keeps it open until the returned function is called. */
export function connectEvents(token: string, handlers: StreamHandlers): () => void {
  const controller = new AbortController();
  let delay = 500;
  let timer: ReturnType<typeof setTimeout> | undefined;

  async function once(): Promise<'retry' | 'stop'> {
    try {
      const response = await fetch('/v1/events', { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: controller.signal, cache: 'no-store' });
      if (response.status === 401 || response.status === 403) {
        handlers.onRefused(response.status);
        return 'stop';
      }
      if (!response.ok || response.body === null) return 'retry';
      delay = 500;
      handlers.onConnected(true);
      await readStream(response.body, (event) => handlers.onEvent(event));
    } catch {
      // A refused connection or a stream cut by a daemon restart: retried below.
    }
    return controller.signal.aborted ? 'stop' : 'retry';
  }

  function loop(): void {
    void once().then((next) => {
      if (next === 'stop' || controller.signal.aborted) return;
      handlers.onConnected(false);
      timer = setTimeout(loop, delay);
      delay = Math.min(delay * 2, 5000);
    });
  }
  loop();
  return () => {
    controller.abort();
    if (timer !== undefined) clearTimeout(timer);
  };
}
