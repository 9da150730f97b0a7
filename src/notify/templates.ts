import { EVENT_LEVELS, type Notification, type NotifyEvent, type NotifyLevel } from './events.js';

/** What a template can name: `{{mandate}}`, `{{target}}`, `{{error}}` … (null shows as `-`). */
export interface TemplateContext {
  event: NotifyEvent | 'test';
  mandate: string | null;
  target: string | null;
  error: { code: string; message: string } | null;
  job_id: string | null;
  at: string;
  /** Event-specific words: why stale, the size anomaly, the outcome of a restore, the size of a backup. */
  details: string | null;
  command: string | null;
  /** `succeeded`, `failed`, `cancelled` (restore_finished); null otherwise. */
  outcome: string | null;
  reminder: boolean;
  /** Overrides the event's level (a failed restore_finished is `error`). */
  level?: NotifyLevel;
}

export interface Template {
  title: string;
  body: string;
}

const FOOTER = '\n\nJob: {{job_id}}\nInvestigate: {{command}}';

/** The default title and body of each event. */
export const DEFAULT_TEMPLATES: Record<NotifyEvent | 'test', Template> = {
  backup_failed: { title: 'Backup of {{mandate}} failed', body: 'The backup of mandate {{mandate}} to {{target}} failed: {{error}}' + FOOTER },
  backup_succeeded: { title: 'Backup of {{mandate}} succeeded', body: 'The backup of mandate {{mandate}} to {{target}} succeeded ({{details}}).' + FOOTER },
  backup_recovered: {
    title: 'Backup of {{mandate}} recovered',
    body: 'The backup of mandate {{mandate}} to {{target}} succeeded again after {{details}}.' + FOOTER,
  },
  stale: { title: 'Backups of {{mandate}} are stale', body: 'Mandate {{mandate}} has no recent successful backup: {{details}}\n\nInvestigate: {{command}}' },
  size_anomaly: { title: 'Backup of {{mandate}} has an unusual size', body: 'The last backup of mandate {{mandate}} looks wrong: {{details}}' + FOOTER },
  verification_failed: { title: 'Verification of {{mandate}} failed', body: 'A verification of the backups of mandate {{mandate}} failed: {{error}}' + FOOTER },
  restore_started: { title: 'Restore of {{mandate}} started', body: 'A restore of mandate {{mandate}} started: {{details}}' + FOOTER },
  restore_finished: { title: 'Restore of {{mandate}} {{outcome}}', body: 'The restore of mandate {{mandate}} {{outcome}}. {{error}}' + FOOTER },
  test: { title: 'Backer test notification', body: 'This is a test message from `backer notify test` to the destination {{details}}. If you read it, delivery works.' },
};

function value(ctx: TemplateContext, key: string): string | undefined {
  switch (key) {
    case 'error':
      return ctx.error === null ? '-' : `${ctx.error.message} (${ctx.error.code})`;
    case 'error_code':
      return ctx.error?.code ?? '-';
    case 'error_message':
      return ctx.error?.message ?? '-';
    case 'level':
      return ctx.level ?? (ctx.event === 'test' ? 'info' : EVENT_LEVELS[ctx.event]);
    case 'event':
    case 'mandate':
    case 'target':
    case 'job_id':
    case 'at':
    case 'details':
    case 'command':
    case 'outcome':
      return ctx[key] ?? '-';
    default:
      return undefined;
  }
}

/** Replaces `{{key}}`; unknown keys stay as written (a typo shows in the message). */
export function render(text: string, ctx: TemplateContext): string {
  return text.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (whole, key: string) => value(ctx, key) ?? whole);
}

/** The notification for one event, from the destination's template or the default. */
export function buildNotification(ctx: TemplateContext, override: Partial<Template> = {}): Notification {
  const template = { ...DEFAULT_TEMPLATES[ctx.event], ...override };
  const level = ctx.level ?? (ctx.event === 'test' ? 'info' : EVENT_LEVELS[ctx.event]);
  const title = render(template.title, ctx);
  return {
    event: ctx.event,
    level,
    mandate: ctx.mandate,
    target: ctx.target,
    title: ctx.reminder ? `Reminder: ${title}` : title,
    message: render(template.body, ctx),
    error: ctx.error,
    job_id: ctx.job_id,
    at: ctx.at,
    command: ctx.command,
    reminder: ctx.reminder,
  };
}
