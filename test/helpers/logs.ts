import { Writable } from 'node:stream';
import { createLogger, SecretRegistry, type Logger } from '../../src/logging/logger.js';

/** One JSON log line of Backer's logger. */
export type LogLine = Record<string, unknown> & { msg: string; level: number };

/** The JSON log lines in `output` (other lines, such as a CLI's own messages, are skipped). */
export function parseLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** A debug logger whose lines the test reads back. */
export function capturingLogger(): { logger: Logger; lines: () => LogLine[] } {
  const out: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', secrets: new SecretRegistry(), destination });
  return { logger, lines: () => parseLines(out.join('')) };
}
