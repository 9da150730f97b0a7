/**
 * Real receivers for notification tests: an SMTP server (smtp-server) whose mails are parsed with
 * mailparser, and HTTP servers that record every request (method, path, headers, body).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function waitUntil<T>(what: string, read: () => T[], count: number, timeoutMs: number): Promise<T[]> {
  const deadline = Date.now() + timeoutMs;
  while (read().length < count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} ${what}, received ${read().length} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return read();
}

export interface HttpReceiver {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  requests: RecordedRequest[];
  /** Status of the next answers: the first `failures` requests get 503. */
  failNext(failures: number): void;
  waitFor(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  close(): Promise<void>;
}

export async function startHttpReceiver(): Promise<HttpReceiver> {
  const requests: RecordedRequest[] = [];
  let failures = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const failing = failures > 0;
      if (failing) failures--;
      res.writeHead(failing ? 503 : 200, { 'content-type': 'application/json' }).end(failing ? '{"error":"unavailable"}' : '{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    failNext: (n) => (failures = n),
    waitFor: (count, timeoutMs = 20_000) => waitUntil('HTTP requests', () => requests, count, timeoutMs),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface ReceivedMail {
  /** The user that authenticated, or null. */
  user: string | null;
  envelope: { from: string; to: string[] };
  mail: ParsedMail;
}

export interface SmtpReceiver {
  port: number;
  mails: ReceivedMail[];
  /** Failed AUTH attempts (a wrong password). */
  authFailures: number;
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

/** A plain SMTP server on 127.0.0.1 (no STARTTLS) that accepts `user`/`password` only. */
export async function startSmtpReceiver(credentials: { user: string; password: string }): Promise<SmtpReceiver> {
  const mails: ReceivedMail[] = [];
  const state = { authFailures: 0 };
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: false,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === credentials.user && auth.password === credentials.password) return callback(null, { user: auth.username });
      state.authFailures++;
      return callback(new Error('invalid credentials'));
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((mail) => {
          const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
          mails.push({ user: typeof session.user === 'string' ? session.user : null, envelope: { from, to: session.envelope.rcptTo.map((r) => r.address) }, mail });
          callback();
        })
        .catch((err: Error) => callback(err));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    port,
    mails,
    get authFailures() {
      return state.authFailures;
    },
    waitFor: (count, timeoutMs = 20_000) => waitUntil('mails', () => mails, count, timeoutMs),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A loopback port nothing listens on (a receiver that is down). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
