import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logging/logger.js';
import { describeError } from '../errors.js';
import type { Notification } from './events.js';
import type { NotificationConfig } from './schema.js';
import { parseDestination, redactUrl, type Destination } from './senders/index.js';

/** A configured destination, parsed once. */
export interface LiveDestination {
  config: NotificationConfig;
  destination: Destination;
  /** The URL with its secrets replaced by `***`: for logs and `notify test`. */
  redacted: string;
}

export function liveDestination(config: NotificationConfig): LiveDestination {
  const destination = parseDestination(config.url);
  return { config, destination, redacted: redactUrl(config.url, destination.secrets) };
}

/** What the log scrubber must know of a destination: its whole URL and each secret part of it. */
export function destinationSecrets(config: NotificationConfig): string[] {
  return [config.url, ...parseDestination(config.url).secrets];
}

export interface RetryPolicy {
  /** Attempts in all. Default 3. */
  tries: number;
  /** Wait before the second attempt, doubled for each further one. Default 2s. */
  delayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { tries: 3, delayMs: 2000 };

/** The error of a failed attempt, with the destination's secrets taken out. */
export function deliveryError(d: LiveDestination, err: unknown): string {
  return redactUrl(describeError(err), [...d.destination.secrets, d.config.url]);
}

/**
 * Sends one notification with retries; never throws. Every failed attempt is logged (warn) with
 * the destination's name and its redacted URL, the last one as an error.
 */
export async function deliver(d: LiveDestination, n: Notification, retry: RetryPolicy, logger: Logger, signal: AbortSignal): Promise<boolean> {
  const where = { destination: d.config.name, url: d.redacted, event: n.event, mandate: n.mandate };
  for (let attempt = 1; attempt <= retry.tries; attempt++) {
    try {
      await d.destination.send(n, signal);
      logger.info({ ...where, attempt }, 'notification sent');
      return true;
    } catch (err) {
      const error = deliveryError(d, err);
      if (attempt === retry.tries || signal.aborted) {
        logger.error({ ...where, attempt, error }, `notification to ${d.config.name} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${error}`);
        return false;
      }
      const delay = retry.delayMs * 2 ** (attempt - 1);
      logger.warn({ ...where, attempt, error, retry_in_ms: delay }, `notification to ${d.config.name} failed (attempt ${attempt} of ${retry.tries}), retrying: ${error}`);
      const waited = await sleep(delay, true, { signal }).catch(() => false);
      if (!waited) return false;
    }
  }
  return false;
}
