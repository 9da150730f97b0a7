import { describe, expect, it } from 'vitest';
import { readStream, type BackerEvent } from './events';

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

describe('readStream (server-sent events over fetch)', () => {
  it('parses messages split anywhere across chunks, multi-byte characters included; comments are skipped', async () => {
    const text = ': ping\n\nid: 1\nevent: job.queued\ndata: {"type":"job.queued","job":{"mandate":"bäckup"}}\n\nid: 2\nevent: mandates.changed\ndata: {"type":"mandates.changed"}\n\n';
    const bytes = new TextEncoder().encode(text);
    const events: BackerEvent[] = [];
    // One byte per chunk: the two-byte "ä" is cut in two, and so is every line and message.
    const chunks = Array.from(bytes, (b) => Uint8Array.of(b));
    await readStream(streamOf(chunks), (e) => events.push(e));
    expect(events).toEqual([{ type: 'job.queued', job: { mandate: 'bäckup' } }, { type: 'mandates.changed' }]);
  });
});
