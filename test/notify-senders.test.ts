/**
 * Every notification scheme against real receivers: a local HTTP server checks each webhook's
 * method, path, headers and body; a real SMTP server (smtp-server) receives and parses the mail
 * (mailparser). Also: what each URL form means, the secrets each declares, and bad URLs refused
 * with what is expected and without quoting the URL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Notification } from '../src/notify/events.js';
import { parseDestination, redactUrl, UrlProblem } from '../src/notify/senders/index.js';
import { buildNotification } from '../src/notify/templates.js';
import { closedPort, startHttpReceiver, startSmtpReceiver, type HttpReceiver, type RecordedRequest, type SmtpReceiver } from './helpers/receivers.js';

const SMTP_PASSWORD = 'smtp-pass-7Hq9zK2m';
const SLACK = ['T0SLACKAA', 'B0SLACKBB', 'XsLaCkSeCrEt1234567890ab'];
const DISCORD_TOKEN = 'dIsCoRdToKeN-abcdefghijklmnopqrstuvwxyz0123';
const GOTIFY_TOKEN = 'AgOtIfYtOkEn42x';
const TELEGRAM_TOKEN = '123456789:AAtelegramSecretToken_xyz';
const NTFY_PASSWORD = 'ntfy-pass-Zz81';
const WEBHOOK_TOKEN = 'whk_0123456789abcdefSECRET';

let http: HttpReceiver;
let smtp: SmtpReceiver;

const failed: Notification = buildNotification({
  event: 'backup_failed', mandate: 'shop-db', target: 'local, s3', error: { code: 'DUMP_FAILED', message: 'mysqldump exited with 2' },
  job_id: 'job-123', at: '2026-11-29T22:00:00.000Z', details: null, command: 'backer jobs show job-123', outcome: null, reminder: false,
});

async function sendAndCapture(url: string, n: Notification = failed): Promise<RecordedRequest> {
  const before = http.requests.length;
  await parseDestination(url).send(n, AbortSignal.timeout(10_000));
  const requests = await http.waitFor(before + 1);
  expect(requests).toHaveLength(before + 1);
  return requests[before] as RecordedRequest;
}

const json = (r: RecordedRequest): Record<string, unknown> => JSON.parse(r.body) as Record<string, unknown>;

beforeAll(async () => {
  http = await startHttpReceiver();
  smtp = await startSmtpReceiver({ user: 'backer@example.org', password: SMTP_PASSWORD });
});

afterAll(async () => {
  await http.close();
  await smtp.close();
});

describe('default templates', () => {
  it('name the mandate, the target, the error and the command to investigate', () => {
    expect(failed.title).toBe('Backup of shop-db failed');
    expect(failed.level).toBe('error');
    expect(failed.message).toBe('The backup of mandate shop-db to local, s3 failed: mysqldump exited with 2 (DUMP_FAILED)\n\nJob: job-123\nInvestigate: backer jobs show job-123');
  });
});

describe('smtp://', () => {
  it('sends a mail with the title as subject to every address, authenticated', async () => {
    const url = `smtp://backer%40example.org:${SMTP_PASSWORD}@127.0.0.1:${smtp.port}/?from=backer@example.org&to=ops@example.org,dba@example.org&starttls=no`;
    const destination = parseDestination(url);
    expect(destination.secrets).toEqual([SMTP_PASSWORD]);
    await destination.send(failed, AbortSignal.timeout(10_000));
    const [received] = await smtp.waitFor(1);
    expect(received?.user).toBe('backer@example.org');
    expect(received?.envelope).toEqual({ from: 'backer@example.org', to: ['ops@example.org', 'dba@example.org'] });
    expect(received?.mail.subject).toBe('Backup of shop-db failed');
    expect(received?.mail.text?.trim()).toBe(failed.message);
    expect(received?.mail.headers.get('x-backer-event')).toBe('backup_failed');
    expect(received?.mail.headers.get('x-backer-mandate')).toBe('shop-db');
  });

  it('a wrong password fails the delivery with the server\'s answer', async () => {
    const url = `smtp://backer%40example.org:wrong-password@127.0.0.1:${smtp.port}/?from=backer@example.org&to=ops@example.org&starttls=no`;
    await expect(parseDestination(url).send(failed, AbortSignal.timeout(10_000))).rejects.toThrow(/invalid credentials|auth/i);
    expect(smtp.authFailures).toBeGreaterThan(0);
  });

  it('starttls=yes refuses a server without STARTTLS', async () => {
    const url = `smtp://backer%40example.org:${SMTP_PASSWORD}@127.0.0.1:${smtp.port}/?from=backer@example.org&to=ops@example.org&starttls=yes`;
    await expect(parseDestination(url).send(failed, AbortSignal.timeout(10_000))).rejects.toThrow(/STARTTLS/i);
  });
});

describe('webhook schemes', () => {
  it('slack://hook:A-B-C@webhook posts text and an attachment to /services/A/B/C; the legacy A/B/C forms too', async () => {
    const url = `slack://hook:${SLACK.join('-')}@webhook?host=${http.host}&scheme=http&channel=%23backups`;
    const r = await sendAndCapture(url);
    expect(r.method).toBe('POST');
    expect(r.path).toBe(`/services/${SLACK.join('/')}`);
    expect(r.headers['content-type']).toBe('application/json');
    expect(json(r)).toEqual({ text: failed.title, channel: '#backups', attachments: [{ color: '#d40000', title: failed.title, text: failed.message, footer: failed.command }] });
    const legacy = await sendAndCapture(`slack://backer-bot@${SLACK.join('/')}?host=${http.host}&scheme=http`);
    expect(legacy.path).toBe(`/services/${SLACK.join('/')}`);
    expect(json(legacy)).toMatchObject({ username: 'backer-bot' });
    const slashes = await sendAndCapture(`slack://hook:${SLACK.join('/')}?host=${http.host}&scheme=http`);
    expect(slashes.path).toBe(`/services/${SLACK.join('/')}`);
    expect(parseDestination(url).secrets).toContain(SLACK[2]);
  });

  it('discord://TOKEN@ID posts content to /api/webhooks/ID/TOKEN', async () => {
    const r = await sendAndCapture(`discord://${DISCORD_TOKEN}@987654321098765432?host=${http.host}&scheme=http&username=Backer`);
    expect(r.path).toBe(`/api/webhooks/987654321098765432/${DISCORD_TOKEN}`);
    expect(json(r)).toEqual({ content: `${failed.title}\n\n${failed.message}`, username: 'Backer' });
  });

  it('teams:// posts a MessageCard to the webhookb2 path on ?host=', async () => {
    const r = await sendAndCapture(`teams://group-1234@tenant-5678/altid-abcd/owner-efgh/extra-ijkl?host=${http.host}&scheme=http`);
    expect(r.path).toBe('/webhookb2/group-1234@tenant-5678/IncomingWebhook/altid-abcd/owner-efgh/extra-ijkl');
    expect(json(r)).toEqual({
      '@type': 'MessageCard', '@context': 'https://schema.org/extensions', summary: failed.title, title: failed.title,
      text: failed.message.replace(/\n/g, '<br>'), themeColor: 'D40000',
    });
  });

  it('ntfy:// posts the message to /TOPIC with title, priority, tags and basic auth', async () => {
    const r = await sendAndCapture(`ntfy://backer:${NTFY_PASSWORD}@${http.host}/backups?scheme=http`);
    expect(r.path).toBe('/backups');
    expect(r.body).toBe(failed.message);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.headers.title).toBe(`=?UTF-8?B?${Buffer.from(failed.title).toString('base64')}?=`);
    expect(r.headers.priority).toBe('5');
    expect(r.headers.tags).toBe('backer,backup_failed,rotating_light');
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from(`backer:${NTFY_PASSWORD}`).toString('base64')}`);
  });

  it('gotify:// posts {title, message, priority} to [PATH/]message with the token in X-Gotify-Key', async () => {
    const r = await sendAndCapture(`gotify://${http.host}/gotify/${GOTIFY_TOKEN}?disabletls=yes`);
    expect(r.path).toBe('/gotify/message');
    expect(r.headers['x-gotify-key']).toBe(GOTIFY_TOKEN);
    expect(json(r)).toEqual({ title: failed.title, message: failed.message, priority: 8, extras: { 'client::display': { contentType: 'text/plain' } } });
  });

  it('telegram:// sends one sendMessage per chat', async () => {
    const before = http.requests.length;
    await parseDestination(`telegram://${TELEGRAM_TOKEN}@telegram?chats=-1001234,@backups&host=${http.host}&scheme=http`).send(failed, AbortSignal.timeout(10_000));
    const requests = (await http.waitFor(before + 2)).slice(before);
    expect(requests.map((r) => r.path)).toEqual([`/bot${TELEGRAM_TOKEN}/sendMessage`, `/bot${TELEGRAM_TOKEN}/sendMessage`]);
    expect(requests.map(json)).toEqual(['-1001234', '@backups'].map((chat_id) => ({ chat_id, text: `${failed.title}\n\n${failed.message}`, disable_web_page_preview: true })));
  });

  it('generic+http:// posts the documented JSON body, path and query kept, user:password as basic auth', async () => {
    const r = await sendAndCapture(`generic+http://hook:pw-generic-1@${http.host}/hooks/${WEBHOOK_TOKEN}?source=backer`);
    expect(r.path).toBe(`/hooks/${WEBHOOK_TOKEN}?source=backer`);
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from('hook:pw-generic-1').toString('base64')}`);
    expect(json(r)).toEqual({
      event: 'backup_failed', level: 'error', mandate: 'shop-db', target: 'local, s3', title: failed.title, message: failed.message,
      error: { code: 'DUMP_FAILED', message: 'mysqldump exited with 2' }, job_id: 'job-123', at: '2026-11-29T22:00:00.000Z',
      command: 'backer jobs show job-123', reminder: false,
    });
    expect(parseDestination(`generic+https://h.example/hooks/${WEBHOOK_TOKEN}`).secrets).toEqual([WEBHOOK_TOKEN]);
  });

  it('a non-2xx answer and a refused connection fail the delivery, without the URL in the error', async () => {
    http.failNext(1);
    const url = `generic+http://${http.host}/hooks/${WEBHOOK_TOKEN}`;
    const error = await parseDestination(url).send(failed, AbortSignal.timeout(10_000)).then(() => null, (e: Error) => e);
    expect(error?.message).toBe('HTTP 503 Service Unavailable: {"error":"unavailable"}');
    const down = `generic+http://127.0.0.1:${await closedPort()}/hooks/${WEBHOOK_TOKEN}`;
    await expect(parseDestination(down).send(failed, AbortSignal.timeout(10_000))).rejects.toThrow(/fetch failed/);
  });
});

describe('destination URLs', () => {
  const refused: [string, RegExp][] = [
    ['mailto:ops@example.org', /expected a URL with one of the schemes smtp, smtps, slack/],
    ['pager://x', /received scheme "pager"/],
    ['smtp://u:secret-pw@mail.example.org/?to=a@example.org', /expected smtp:\/\/\[USER:PASSWORD@\]HOST/],
    ['smtp://u:secret-pw@mail.example.org/?from=a@example.org&to=b@example.org&starttls=maybe', /expected \?starttls= auto or yes or no/],
    ['slack://hook:only-two@webhook', /expected slack:\/\/hook:TOKEN-A-TOKEN-B-TOKEN-C@webhook/],
    ['discord://secret-token@not-digits', /expected discord:\/\/TOKEN@WEBHOOK_ID/],
    ['teams://g@t/a/b', /\?host=ORG.webhook.office.com/],
    ['ntfy://host.example/', /expected ntfy:\/\//],
    ['gotify://host.example', /expected gotify:\/\//],
    ['telegram://123:secret-tok@telegram', /chats=/],
    ['generic+https:///path-only', /expected generic\+https/],
    ['slack://hook:A-B-C@webhook?scheme=ftp', /expected \?scheme=http or \?scheme=https/],
  ];
  it.each(refused)('%s is refused with what is expected, never quoting the URL', (url, message) => {
    const error = ((): unknown => {
      try {
        parseDestination(url);
        return null;
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(UrlProblem);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('secret');
  });

  it('redactUrl replaces every secret, also percent-encoded', () => {
    const url = `telegram://${TELEGRAM_TOKEN}@telegram?chats=1`;
    expect(redactUrl(url, parseDestination(url).secrets)).toBe('telegram://***@telegram?chats=1');
    const smtpUrl = 'smtp://u:p%40ss-word@mail.example.org/?from=a@example.org&to=b@example.org';
    expect(redactUrl(smtpUrl, parseDestination(smtpUrl).secrets)).toBe('smtp://u:***@mail.example.org/?from=a@example.org&to=b@example.org');
  });
});
