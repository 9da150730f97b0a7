import { basicAuth, post } from './http.js';
import { nonEmpty, UrlProblem, type SenderDefinition } from './types.js';

/**
 * A JSON webhook: `generic+https://[USER:PASSWORD@]HOST[:PORT]/PATH[?QUERY]` (or generic+http) POSTs
 * the notification as JSON: `{event, level, mandate, target, title, message, error, job_id, at,
 * command, reminder}`. The path and query are kept (webhook tokens often live there: they count
 * as secrets); user and password become Basic auth.
 */
export const genericSender: SenderDefinition = {
  schemes: ['generic+https', 'generic+http'],
  form: 'generic+https://[USER:PASSWORD@]HOST[:PORT]/PATH',
  parse(url) {
    if (url.host === '') throw new UrlProblem('expected generic+https://HOST[:PORT]/PATH or generic+http://…');
    const scheme = url.protocol === 'generic+http:' ? 'http' : 'https';
    const target = `${scheme}://${url.host}${url.pathname}${url.search}`;
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    // Every path segment and query value long enough to be a token is treated as one.
    const pathTokens = url.pathname.split('/').filter((p) => p.length >= 16);
    const queryTokens = [...url.searchParams.values()].filter((v) => v.length >= 16);
    return {
      scheme: scheme === 'http' ? 'generic+http' : 'generic+https',
      secrets: nonEmpty([password, ...pathTokens, ...queryTokens]),
      send: (n, signal) => {
        const { event, level, mandate, target: targets, title, message, error, job_id, at, command, reminder } = n;
        const body = { event, level, mandate, target: targets, title, message, error, job_id, at, command, reminder };
        return post({ url: target, body, headers: user === '' ? {} : { authorization: basicAuth(user, password) } }, signal);
      },
    };
  },
};
