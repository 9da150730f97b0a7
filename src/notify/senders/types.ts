import type { Notification } from '../events.js';

/** A parsed destination URL, ready to deliver. */
export interface Destination {
  scheme: string;
  /** The secret parts of the URL (password, token, webhook path): registered so that logs scrub them. */
  secrets: string[];
  /** Throws on failure (the notifier retries and logs). */
  send(notification: Notification, signal: AbortSignal): Promise<void>;
}

/** One module per service: the schemes it takes and how its URL becomes a Destination. */
export interface SenderDefinition {
  schemes: readonly string[];
  /** The URL form, for messages (`slack://hook:TOKEN-A-TOKEN-B-TOKEN-C@webhook`). */
  form: string;
  /** Rewrites forms the URL parser cannot read into one it can (slack's `hook:A/B/C`). */
  normalize?(raw: string): string;
  /** Throws UrlProblem saying what is expected, never quoting the URL (it holds secrets). */
  parse(url: URL): Destination;
}

/** A destination URL that cannot be used; the message says what is expected, without the URL. */
export class UrlProblem extends Error {}

/** `?scheme=http` switches an HTTPS service to plain HTTP (a local relay, the tests); anything else is refused. */
export function httpScheme(url: URL): 'http' | 'https' {
  const value = url.searchParams.get('scheme') ?? 'https';
  if (value !== 'http' && value !== 'https') throw new UrlProblem('expected ?scheme=http or ?scheme=https');
  return value;
}

/** The host of a hosted service (`?host=` overrides it: a proxy, a self-hosted instance, the tests). */
export function serviceHost(url: URL, fallback: string): string {
  const host = url.searchParams.get('host');
  if (host === null) return fallback;
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host) && !/^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(host)) throw new UrlProblem('expected ?host=HOST[:PORT]');
  return host;
}

export function nonEmpty(values: (string | null | undefined)[]): string[] {
  return values.filter((v): v is string => v !== null && v !== undefined && v !== '');
}

/** `title` then `message`, for services with one text field. */
export function plainText(n: Notification): string {
  return `${n.title}\n\n${n.message}`;
}
