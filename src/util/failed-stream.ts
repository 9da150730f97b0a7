import { Duplex } from 'node:stream';

/**
 * A stream that fails with `err` as soon as it is used: when the stream before it writes or ends,
 * or when the stream after it starts reading. It is not destroyed up front, because Node 22+
 * refuses to pipe into a destroyed stream: a pipeline would then fail with
 * ERR_STREAM_UNABLE_TO_PIPE instead of `err`, and `err` would escape as an uncaught error.
 */
export function failedStream(err: Error): Duplex {
  return new Duplex({
    read() {
      this.destroy(err);
    },
    write(_chunk, _encoding, callback) {
      callback(err);
    },
    final(callback) {
      callback(err);
    },
  });
}
