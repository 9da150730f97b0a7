import { basicAuth, post } from './http.js';
import { httpScheme, nonEmpty, UrlProblem, type SenderDefinition } from './types.js';

const PRIORITY = { error: '5', warning: '4', info: '3' } as const;

/**
 * ntfy: `ntfy://[USER:PASSWORD@]HOST[:PORT]/TOPIC` posts the message to https://HOST/TOPIC with the
 * title, priority (from the level; `?priority=1..5` fixes it) and tags as headers (`?scheme=http`).
 */
export const ntfySender: SenderDefinition = {
  schemes: ['ntfy'],
  form: 'ntfy://[USER:PASSWORD@]HOST[:PORT]/TOPIC',
  parse(url) {
    const topic = url.pathname.replace(/^\/+|\/+$/g, '');
    if (url.host === '' || topic === '' || topic.includes('/')) throw new UrlProblem('expected ntfy://[USER:PASSWORD@]HOST[:PORT]/TOPIC');
    const fixed = url.searchParams.get('priority');
    if (fixed !== null && !/^[1-5]$/.test(fixed)) throw new UrlProblem('expected ?priority= 1 to 5');
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    const target = `${httpScheme(url)}://${url.host}/${topic}`;
    return {
      scheme: 'ntfy',
      secrets: nonEmpty([password]),
      send: (n, signal) =>
        post(
          {
            url: target,
            body: n.message,
            headers: {
              // Header values are Latin-1: ntfy reads RFC 2047 encoded words for the rest.
              title: `=?UTF-8?B?${Buffer.from(n.title).toString('base64')}?=`,
              priority: fixed ?? PRIORITY[n.level],
              tags: ['backer', n.event, n.level === 'error' ? 'rotating_light' : n.level === 'warning' ? 'warning' : 'white_check_mark'].join(','),
              ...(user === '' ? {} : { authorization: basicAuth(user, password) }),
            },
          },
          signal,
        ),
    };
  },
};
