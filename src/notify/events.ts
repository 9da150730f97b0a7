/** What a destination can be told about (the `events` of a `notifications` entry). */
export const NOTIFY_EVENTS = [
  'backup_failed',
  'backup_succeeded',
  'backup_recovered',
  'stale',
  'size_anomaly',
  'verification_failed',
  'restore_started',
  'restore_finished',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** Every event but backup_succeeded (one message per successful backup is noise for most). */
export const DEFAULT_EVENTS: readonly NotifyEvent[] = NOTIFY_EVENTS.filter((e) => e !== 'backup_succeeded');

export const NOTIFY_LEVELS = ['info', 'warning', 'error'] as const;
export type NotifyLevel = (typeof NOTIFY_LEVELS)[number];

/**
 * The level of each event (`min_level` filters on it). restore_finished is `error` when the
 * restore failed or was cancelled, else `info`.
 */
export const EVENT_LEVELS: Record<NotifyEvent, NotifyLevel> = {
  backup_failed: 'error',
  backup_succeeded: 'info',
  backup_recovered: 'info',
  stale: 'warning',
  size_anomaly: 'warning',
  verification_failed: 'error',
  restore_started: 'info',
  restore_finished: 'info',
};

export function levelAtLeast(level: NotifyLevel, min: NotifyLevel): boolean {
  return NOTIFY_LEVELS.indexOf(level) >= NOTIFY_LEVELS.indexOf(min);
}

/** One message, whatever the destination: every sender renders it its own way; the generic webhook posts it as is. */
export interface Notification {
  /** `test` for `backer notify test`. */
  event: NotifyEvent | 'test';
  level: NotifyLevel;
  mandate: string | null;
  /** Comma-separated target names, or null. */
  target: string | null;
  title: string;
  message: string;
  error: { code: string; message: string } | null;
  job_id: string | null;
  /** ISO time of the event. */
  at: string;
  /** The command that shows more (`backer jobs show ID`, `backer mandates show M`). */
  command: string | null;
  /** This is a reminder of a problem already notified (the `repeat` of the destination). */
  reminder: boolean;
}
