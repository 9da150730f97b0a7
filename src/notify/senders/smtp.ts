import type { Notification } from '../events.js';
import { HTTP_TIMEOUT_MS } from './http.js';
import { nonEmpty, UrlProblem, type SenderDefinition } from './types.js';

const FORM = 'smtp://[USER:PASSWORD@]HOST[:PORT]/?from=ADDRESS&to=ADDRESS[,ADDRESS…][&starttls=auto|yes|no] (smtps:// or ?tls=yes for TLS from the start)';
const ADDRESS = /^[^\s@,]+@[^\s@,]+$/;

function list(url: URL, ...keys: string[]): string[] {
  for (const key of keys) {
    const value = url.searchParams.get(key);
    if (value !== null) return value.split(',').map((a) => a.trim()).filter((a) => a !== '');
  }
  return [];
}

function flag(url: URL, key: string, allowed: readonly string[], fallback: string): string {
  const value = url.searchParams.get(key) ?? fallback;
  if (!allowed.includes(value)) throw new UrlProblem(`expected ?${key}= ${allowed.join(' or ')}`);
  return value;
}

interface SmtpSettings {
  host: string;
  port: number;
  secure: boolean;
  starttls: string;
  user: string;
  password: string;
  from: string;
  to: string[];
}

function settings(url: URL): SmtpSettings {
  const secure = url.protocol === 'smtps:' || flag(url, 'tls', ['yes', 'no'], 'no') === 'yes';
  const from = list(url, 'from', 'fromaddress')[0] ?? '';
  const to = list(url, 'to', 'toaddresses');
  if (url.hostname === '' || !ADDRESS.test(from) || to.length === 0 || !to.every((a) => ADDRESS.test(a))) throw new UrlProblem(`expected ${FORM}`);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? (secure ? 465 : 25) : Number(url.port),
    secure,
    starttls: flag(url, 'starttls', ['auto', 'yes', 'no'], 'auto'),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    from,
    to,
  };
}

async function sendMail(s: SmtpSettings, n: Notification): Promise<void> {
  // Loaded on first use: the config (which parses every URL) must not pull nodemailer into every command.
  const { createTransport } = await import('nodemailer');
  const transport = createTransport({
    host: s.host,
    port: s.port,
    secure: s.secure,
    // auto: STARTTLS when the server offers it; yes: refuse a server without it; no: plain text.
    requireTLS: s.starttls === 'yes',
    ignoreTLS: s.starttls === 'no',
    auth: s.user === '' ? undefined : { user: s.user, pass: s.password },
    connectionTimeout: HTTP_TIMEOUT_MS,
    greetingTimeout: HTTP_TIMEOUT_MS,
    socketTimeout: HTTP_TIMEOUT_MS,
  });
  try {
    await transport.sendMail({
      from: s.from,
      to: s.to,
      subject: n.title,
      text: n.message,
      headers: { 'X-Backer-Event': n.event, 'X-Backer-Level': n.level, ...(n.mandate === null ? {} : { 'X-Backer-Mandate': n.mandate }) },
    });
  } finally {
    transport.close();
  }
}

/** Mail through an SMTP server (nodemailer). */
export const smtpSender: SenderDefinition = {
  schemes: ['smtp', 'smtps'],
  form: FORM,
  parse(url) {
    const s = settings(url);
    return {
      scheme: url.protocol.slice(0, -1),
      secrets: nonEmpty([s.password]),
      send: (n, signal) => {
        signal.throwIfAborted();
        return sendMail(s, n);
      },
    };
  },
};
