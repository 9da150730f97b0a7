import { post } from './http.js';
import { httpScheme, plainText, serviceHost, UrlProblem, type SenderDefinition } from './types.js';

/**
 * Telegram bots: `telegram://TOKEN@telegram?chats=CHAT[,CHAT…]` (TOKEN as BotFather gives it,
 * `123456:ABC…`) sends one message per chat through https://api.telegram.org/botTOKEN/sendMessage
 * (`?host=`, `?scheme=http`).
 */
export const telegramSender: SenderDefinition = {
  schemes: ['telegram'],
  form: 'telegram://TOKEN@telegram?chats=CHAT[,CHAT…]',
  parse(url) {
    const token = url.password === '' ? decodeURIComponent(url.username) : `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    const chats = (url.searchParams.get('chats') ?? '').split(',').map((c) => c.trim()).filter((c) => c !== '');
    if (!/^\d+:[A-Za-z0-9_-]+$/.test(token) || url.hostname !== 'telegram' || chats.length === 0) {
      throw new UrlProblem('expected telegram://TOKEN@telegram?chats=CHAT[,CHAT…] (TOKEN as 123456:ABC…, chats as ids or @channel names)');
    }
    const target = `${httpScheme(url)}://${serviceHost(url, 'api.telegram.org')}/bot${token}/sendMessage`;
    return {
      scheme: 'telegram',
      secrets: [token],
      async send(n, signal) {
        for (const chat of chats) await post({ url: target, body: { chat_id: chat, text: plainText(n), disable_web_page_preview: true } }, signal);
      },
    };
  },
};
