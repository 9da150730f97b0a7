import { BackerError } from '../../errors.js';
import { deliveryError, liveDestination, type LiveDestination } from '../../notify/delivery.js';
import { buildNotification } from '../../notify/templates.js';
import type { Notification } from '../../notify/events.js';
import { SecretRegistry } from '../../logging/logger.js';
import { loadCliConfig, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine, table } from '../output.js';

interface DeliveryReport {
  name: string;
  scheme: string;
  url: string;
  ok: boolean;
  error: string | null;
}

async function sendTest(d: LiveDestination): Promise<DeliveryReport> {
  const n: Notification = buildNotification({
    event: 'test', mandate: null, target: null, error: null, job_id: null, at: new Date().toISOString(),
    details: d.config.name, command: null, outcome: null, reminder: false,
  });
  const base = { name: d.config.name, scheme: d.destination.scheme, url: d.redacted };
  try {
    await d.destination.send(n, AbortSignal.timeout(30_000));
    return { ...base, ok: true, error: null };
  } catch (err) {
    return { ...base, ok: false, error: deliveryError(d, err) };
  }
}

/**
 * `backer notify test [NAME]`: one test message to each destination (or NAME), sent from this
 * process, one attempt each (the daemon retries; this shows what one delivery does).
 */
export async function notifyTestCommand(name: string | undefined, options: GlobalOptions): Promise<number> {
  const { config } = await loadCliConfig(options);
  const chosen = config.notifications.filter((n) => name === undefined || n.name === name);
  if (chosen.length === 0) {
    const known = config.notifications.map((n) => n.name);
    const message = name === undefined ? 'no notification destinations are configured (notifications: in the config file)' : `no notification destination named ${name}; known: ${known.length > 0 ? known.join(', ') : 'none'}`;
    throw new BackerError('USAGE_INVALID', message, { component: 'notify', details: { name: name ?? null }, permanent: true });
  }
  const reports = await Promise.all(chosen.map((c) => sendTest(liveDestination(c))));
  // Even an error message quoting a secret (a server echoing the URL) never reaches the terminal.
  const secrets = new SecretRegistry();
  for (const c of chosen) secrets.add(c.url);
  const clean = reports.map((r) => ({ ...r, error: r.error === null ? null : secrets.scrub(r.error) }));
  if (options.json) printJson({ ok: clean.every((r) => r.ok), deliveries: clean });
  else printLine(table(clean.map((r) => [r.name, r.scheme, r.ok ? 'ok' : `error: ${r.error ?? ''}`])));
  return clean.every((r) => r.ok) ? EXIT.OK : EXIT.FAILED;
}
