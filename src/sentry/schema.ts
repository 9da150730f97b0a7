import { z } from 'zod';

/** `sentry:` in backer.yml: where unexpected errors and failed jobs are reported (README "Sentry"). */
export const sentryConfigSchema = z
  .object({
    /** The project's DSN, `https://PUBLIC_KEY@HOST/PROJECT_ID`. One of dsn and dsn_file. */
    dsn: z.string().min(1).optional(),
    /** A file holding the DSN (a Docker secret), relative to the config file; read at start. */
    dsn_file: z.string().min(1).optional(),
    /** Sentry's environment of every event, e.g. `production`. Default: none. */
    environment: z.string().min(1).optional(),
    /** Sentry's release of every event. Default: `backer@<version>`. */
    release: z.string().min(1).optional(),
    /** Sentry Crons check-ins per mandate (in_progress at a backup's start, ok or error at its end). Default: false. */
    crons: z.boolean().default(false),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.dsn === undefined) === (s.dsn_file === undefined)) ctx.addIssue({ code: 'custom', path: [], message: 'expected exactly one of dsn and dsn_file' });
    if (s.dsn !== undefined && dsnProblem(s.dsn) !== null) ctx.addIssue({ code: 'custom', path: ['dsn'], message: dsnProblem(s.dsn) ?? '' });
  });

export type SentryConfig = z.output<typeof sentryConfigSchema>;

/** Why `dsn` is not a Sentry DSN (never quoting it: its key is a credential), or null. */
export function dsnProblem(dsn: string): string | null {
  let url: URL;
  try {
    url = new URL(dsn.trim());
  } catch {
    return 'expected a DSN like https://PUBLIC_KEY@o0.ingest.sentry.io/PROJECT_ID';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'expected an http(s) DSN';
  if (url.username === '') return 'the DSN has no public key (https://PUBLIC_KEY@HOST/PROJECT_ID)';
  if (!/^\/?(.*\/)?\d+$/.test(url.pathname)) return 'the DSN has no project id at the end of its path';
  return null;
}
