import { post } from './http.js';
import { httpScheme, UrlProblem, type SenderDefinition } from './types.js';

const COLORS = { error: 'D40000', warning: 'E8A400', info: '2EB67D' } as const;

/**
 * Microsoft Teams incoming webhooks, shoutrrr's form:
 * `teams://GROUP@TENANT/ALT_ID/GROUP_OWNER[/EXTRA_ID]?host=ORG.webhook.office.com` posts a MessageCard to
 * https://HOST/webhookb2/GROUP@TENANT/IncomingWebhook/ALT_ID/GROUP_OWNER[/EXTRA_ID] (`?scheme=http` for a relay).
 */
export const teamsSender: SenderDefinition = {
  schemes: ['teams'],
  form: 'teams://GROUP@TENANT/ALT_ID/GROUP_OWNER[/EXTRA_ID]?host=ORG.webhook.office.com',
  parse(url) {
    const group = decodeURIComponent(url.username);
    const tenant = url.hostname;
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const host = url.searchParams.get('host');
    if (group === '' || tenant === '' || parts.length < 2 || parts.length > 3 || host === null || !/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host)) {
      throw new UrlProblem('expected teams://GROUP@TENANT/ALT_ID/GROUP_OWNER[/EXTRA_ID]?host=ORG.webhook.office.com (the parts of the webhook URL)');
    }
    const target = `${httpScheme(url)}://${host}/webhookb2/${group}@${tenant}/IncomingWebhook/${parts.join('/')}`;
    return {
      scheme: 'teams',
      secrets: [`${group}@${tenant}`, ...parts],
      send: (n, signal) =>
        post(
          {
            url: target,
            body: { '@type': 'MessageCard', '@context': 'https://schema.org/extensions', summary: n.title, title: n.title, text: n.message.replace(/\n/g, '<br>'), themeColor: COLORS[n.level] },
          },
          signal,
        ),
    };
  },
};
