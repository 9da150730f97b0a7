import { discordSender } from './discord.js';
import { genericSender } from './generic.js';
import { gotifySender } from './gotify.js';
import { ntfySender } from './ntfy.js';
import { slackSender } from './slack.js';
import { smtpSender } from './smtp.js';
import { telegramSender } from './telegram.js';
import { teamsSender } from './teams.js';
import { UrlProblem, type Destination, type SenderDefinition } from './types.js';

export { UrlProblem, type Destination, type SenderDefinition } from './types.js';

export const SENDERS: readonly SenderDefinition[] = [smtpSender, slackSender, discordSender, teamsSender, ntfySender, gotifySender, telegramSender, genericSender];

const BY_SCHEME = new Map(SENDERS.flatMap((s) => s.schemes.map((scheme) => [scheme, s] as const)));
export const SCHEMES: readonly string[] = [...BY_SCHEME.keys()];

/** The scheme of a URL (lowercase), or null when it has none. */
export function schemeOf(raw: string): string | null {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(raw.trim());
  return match?.[1]?.toLowerCase() ?? null;
}

/**
 * Parses a destination URL. Throws UrlProblem with what is expected; the message never quotes the
 * URL, which holds passwords and tokens.
 */
export function parseDestination(raw: string): Destination {
  const scheme = schemeOf(raw);
  const sender = scheme === null ? undefined : BY_SCHEME.get(scheme);
  if (sender === undefined) {
    throw new UrlProblem(`expected a URL with one of the schemes ${SCHEMES.join(', ')}${scheme === null ? '' : `; received scheme ${JSON.stringify(scheme)}`}`);
  }
  const text = sender.normalize ? sender.normalize(raw.trim()) : raw.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UrlProblem(`expected ${sender.form} (the URL does not parse; characters such as @ : / ? # in a password or token must be percent-encoded)`);
  }
  return sender.parse(url);
}

/** The URL with its secret parts replaced, for logs and messages. */
export function redactUrl(raw: string, secrets: readonly string[]): string {
  let out = raw.trim();
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length === 0) continue;
    out = out.split(secret).join('***').split(encodeURIComponent(secret)).join('***');
  }
  return out;
}
