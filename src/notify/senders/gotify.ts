import { post } from './http.js';
import { httpScheme, UrlProblem, type SenderDefinition } from './types.js';

const PRIORITY = { error: 8, warning: 5, info: 2 } as const;

/**
 * Gotify: `gotify://HOST[:PORT][/PATH]/TOKEN` posts `{title, message, priority}` to
 * https://HOST[/PATH]/message with the application token in the X-Gotify-Key header
 * (`?scheme=http` or shoutrrr's `?disabletls=yes` for plain HTTP; `?priority=` fixes the priority).
 */
export const gotifySender: SenderDefinition = {
  schemes: ['gotify'],
  form: 'gotify://HOST[:PORT][/PATH]/TOKEN',
  parse(url) {
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const token = parts.pop();
    if (url.host === '' || token === undefined) throw new UrlProblem('expected gotify://HOST[:PORT][/PATH]/TOKEN');
    const fixed = url.searchParams.get('priority');
    if (fixed !== null && !/^\d{1,2}$/.test(fixed)) throw new UrlProblem('expected ?priority= a number from 0 to 10');
    const scheme = url.searchParams.get('disabletls') === 'yes' ? 'http' : httpScheme(url);
    const target = `${scheme}://${url.host}/${[...parts, 'message'].join('/')}`;
    return {
      scheme: 'gotify',
      secrets: [token],
      send: (n, signal) =>
        post(
          {
            url: target,
            body: { title: n.title, message: n.message, priority: fixed === null ? PRIORITY[n.level] : Number(fixed), extras: { 'client::display': { contentType: 'text/plain' } } },
            headers: { 'x-gotify-key': token },
          },
          signal,
        ),
    };
  },
};
