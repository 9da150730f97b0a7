import type { Notification } from '../events.js';
import { post } from './http.js';
import { httpScheme, nonEmpty, serviceHost, UrlProblem, type SenderDefinition } from './types.js';

const TOKEN = /^[A-Za-z0-9]+$/;

/** The three parts of a webhook token, from `A-B-C` or `A/B/C`. */
function tokenParts(text: string): [string, string, string] {
  const parts = text.split(/[-/]/).filter((p) => p !== '');
  const [a, b, c] = parts;
  if (parts.length !== 3 || a === undefined || b === undefined || c === undefined || !parts.every((p) => TOKEN.test(p))) {
    throw new UrlProblem('expected slack://hook:TOKEN-A-TOKEN-B-TOKEN-C@webhook or slack://[BOTNAME@]TOKEN-A/TOKEN-B/TOKEN-C (the three parts of the webhook URL after /services/)');
  }
  return [a, b, c];
}

function body(n: Notification, url: URL, botname: string | null): Record<string, unknown> {
  const channel = url.searchParams.get('channel');
  const color = n.level === 'error' ? '#d40000' : n.level === 'warning' ? '#e8a400' : '#2eb67d';
  return {
    text: n.title,
    ...(botname === null ? {} : { username: botname }),
    ...(channel === null ? {} : { channel }),
    attachments: [{ color, title: n.title, text: n.message, footer: n.command ?? undefined }],
  };
}

/**
 * Slack incoming webhooks. `slack://hook:A-B-C@webhook` (shoutrrr's form), the legacy
 * `slack://[BOTNAME@]A/B/C`, or `slack://hook:A/B/C`; posts to https://hooks.slack.com/services/A/B/C
 * (`?host=` and `?scheme=http` point elsewhere; `?channel=` overrides the webhook's channel).
 */
export const slackSender: SenderDefinition = {
  schemes: ['slack'],
  form: 'slack://hook:TOKEN-A-TOKEN-B-TOKEN-C@webhook',
  normalize: (raw) => raw.replace(/^slack:\/\/hook:([^@/?#]+)\/([^@/?#]+)\/([^@/?#]+)(?=[?#]|$)/, 'slack://hook:$1-$2-$3@webhook'),
  parse(url) {
    const hook = url.username === 'hook';
    const [a, b, c] = hook ? tokenParts(decodeURIComponent(url.password)) : tokenParts(`${url.hostname}${url.pathname}`);
    const botname = hook || url.username === '' ? null : decodeURIComponent(url.username);
    const target = `${httpScheme(url)}://${serviceHost(url, 'hooks.slack.com')}/services/${a}/${b}/${c}`;
    return {
      scheme: 'slack',
      secrets: nonEmpty([`${a}/${b}/${c}`, `${a}-${b}-${c}`, c]),
      send: (n, signal) => post({ url: target, body: body(n, url, botname) }, signal),
    };
  },
};
