import { post } from './http.js';
import { httpScheme, plainText, serviceHost, UrlProblem, type SenderDefinition } from './types.js';

/** Discord refuses content longer than this. */
const MAX_CONTENT = 2000;

/** Discord webhooks: `discord://TOKEN@WEBHOOK_ID` posts to https://discord.com/api/webhooks/WEBHOOK_ID/TOKEN (`?host=`, `?scheme=http`, `?username=`). */
export const discordSender: SenderDefinition = {
  schemes: ['discord'],
  form: 'discord://TOKEN@WEBHOOK_ID',
  parse(url) {
    const token = decodeURIComponent(url.username);
    const id = url.hostname;
    if (token === '' || !/^\d+$/.test(id)) throw new UrlProblem('expected discord://TOKEN@WEBHOOK_ID (the two last parts of the webhook URL, id in digits)');
    const target = `${httpScheme(url)}://${serviceHost(url, 'discord.com')}/api/webhooks/${id}/${token}`;
    const username = url.searchParams.get('username');
    return {
      scheme: 'discord',
      secrets: [token],
      send: (n, signal) => {
        const text = plainText(n);
        const content = text.length > MAX_CONTENT ? `${text.slice(0, MAX_CONTENT - 1)}…` : text;
        return post({ url: target, body: { content, ...(username === null ? {} : { username }) } }, signal);
      },
    };
  },
};
