import { Writable } from 'node:stream';
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import { createRequire } from 'node:module';

export type Logger = PinoLogger;
export type LogFormat = 'json' | 'pretty';

/** Option names whose values are always secret, wherever they appear in a log object. */
const REDACT_PATHS = [
  'password',
  '*.password',
  'secret_access_key',
  '*.secret_access_key',
  'key',
  '*.key',
  'passphrase',
  '*.passphrase',
  'env',
  '*.env',
];

/**
 * Resolved secret values (database passwords read from a container, encryption keys) are
 * registered here and replaced in every log line, whatever field or message they end up in.
 */
export class SecretRegistry {
  private readonly values = new Set<string>();

  add(value: string): void {
    // Very short values would mangle unrelated text and protect nothing.
    if (value.length >= 3) this.values.add(value);
  }

  scrub(text: string): string {
    let out = text;
    for (const value of this.values) {
      if (out.includes(value)) out = out.split(value).join('[REDACTED]');
      const json = JSON.stringify(value).slice(1, -1);
      if (json !== value && out.includes(json)) out = out.split(json).join('[REDACTED]');
    }
    return out;
  }
}

function scrubbingStream(secrets: SecretRegistry, inner: DestinationStream): Writable {
  return new Writable({
    write(chunk: Buffer | string, _enc, callback) {
      inner.write(secrets.scrub(chunk.toString()));
      callback();
    },
  });
}

export interface LoggerOptions {
  level?: string;
  format?: LogFormat;
  secrets: SecretRegistry;
  destination?: DestinationStream;
}

/** pino-pretty (a CommonJS package) is loaded only when the pretty format is asked for: the JSON default never pays for it. */
function prettyStream(): DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return pretty.build({ destination: 2, sync: true });
}

export function createLogger(options: LoggerOptions): Logger {
  const base: DestinationStream =
    options.destination ?? (options.format === 'pretty' ? prettyStream() : pino.destination({ dest: 2, sync: true }));
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      base: { name: 'backer' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    scrubbingStream(options.secrets, base),
  );
}
