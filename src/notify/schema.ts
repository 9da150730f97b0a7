import { z } from 'zod';
import { durationSchema } from '../config/duration.js';
import { nameSchema } from '../config/schema-kit.js';
import { NOTIFY_EVENTS, NOTIFY_LEVELS, type NotifyEvent, type NotifyLevel } from './events.js';
import { compileNameGlob } from './glob.js';
import { parseDestination, UrlProblem } from './senders/index.js';

const templateSchema = z
  .object({
    /** The subject of a mail, the title elsewhere; `{{mandate}}`-style placeholders (see templates.ts). Default: the event's own. */
    title: z.string().min(1).optional(),
    /** The text; same placeholders. Default: the event's own. */
    body: z.string().min(1).optional(),
  })
  .strict();

const globSchema = z
  .string()
  .min(1)
  .superRefine((glob, ctx) => {
    try {
      compileNameGlob(glob);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `expected a mandate name or glob: ${(err as Error).message}` });
    }
  });

/** One destination of `notifications:` in backer.yml. */
export const notificationSchema = z
  .object({
    /** Shown in logs and by `backer notify test`. Default: `<scheme>-<index>` (generic+https → generic). */
    name: nameSchema.optional(),
    /** A shoutrrr-style URL (README "Notifications"); its secrets are scrubbed from logs. One of url or url_file. */
    url: z.string().min(1).optional(),
    /** A file holding the URL (a Docker secret), relative to the config file; read at load. */
    url_file: z.string().min(1).optional(),
    /** Default: every event but backup_succeeded. */
    events: z.array(z.enum(NOTIFY_EVENTS)).min(1).optional(),
    /** Mandate names or globs (`*`, `?`, `[a-z]`, `{a,b}`). Default: every mandate. */
    mandates: z.array(globSchema).min(1).optional(),
    /** Events below this level are not sent. Default: info (all). */
    min_level: z.enum(NOTIFY_LEVELS).default('info'),
    /** A reminder this often while a mandate is still failing or stale. Default: 24h. Parsed: ms. */
    repeat: durationSchema.prefault('24h'),
    /** Title and body per event, instead of the defaults. Default: none. */
    templates: z.partialRecord(z.enum(NOTIFY_EVENTS), templateSchema).optional(),
  })
  .strict()
  .superRefine((n, ctx) => {
    if ((n.url === undefined) === (n.url_file === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'expected exactly one of url and url_file' });
    }
    if (n.url === undefined) return;
    try {
      parseDestination(n.url);
    } catch (err) {
      if (!(err instanceof UrlProblem)) throw err;
      // Never the URL itself: it holds passwords and tokens.
      ctx.addIssue({ code: 'custom', path: ['url'], message: err.message });
    }
  });

export type ParsedNotification = z.output<typeof notificationSchema>;

/** A destination after load: its URL read (url_file), its name and defaults filled in. */
export interface NotificationConfig {
  name: string;
  url: string;
  events: NotifyEvent[];
  /** null: every mandate. */
  mandates: string[] | null;
  min_level: NotifyLevel;
  repeat: number;
  templates: Partial<Record<NotifyEvent, { title?: string; body?: string }>>;
}
