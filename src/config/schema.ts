import { z } from 'zod';
import { ageMiddlewareSchema, checkAgeMiddleware } from '../middleware/age.schema.js';
import { ccryptMiddlewareSchema } from '../middleware/ccrypt.schema.js';
import { checkGpgMiddleware, gpgMiddlewareSchema } from '../middleware/gpg.schema.js';
import { gzipMiddlewareSchema } from '../middleware/gzip.schema.js';
import { zstdMiddlewareSchema } from '../middleware/zstd.schema.js';
import { localTargetSchema } from '../targets/local.schema.js';
import { s3TargetSchema } from '../targets/s3.schema.js';
import { VERIFY_LEVELS } from '../manifests/verification.js';
import { checkCron } from './cron.js';
import { durationSchema } from './duration.js';
import { DEFAULT_WORK_NICE } from '../util/work-priority.js';
import { nameSchema, withJsonSchema } from './schema-kit.js';
import { metricsConfigSchema } from '../metrics/schema.js';
import { statusConfigSchema } from '../status/schema.js';
import { notificationSchema, type NotificationConfig } from '../notify/schema.js';
import { sentryConfigSchema } from '../sentry/schema.js';
import { listenSchema, tlsConfigSchema, tokenConfigSchema, type ApiConfig } from '../api/config.js';

// Each plugin owns its options schema (src/targets/<type>.schema.ts, src/middleware/<type>.schema.ts);
// the config keeps the file-level keys and assembles the plugins' schemas into its unions. Only the
// schema modules are imported here, never a plugin's runtime (the AWS SDK stays out of the config).
export { NAME_PATTERN, nameSchema } from './schema-kit.js';
export { localTargetSchema, type LocalTargetConfig } from '../targets/local.schema.js';
export { s3TargetSchema, type S3TargetConfig } from '../targets/s3.schema.js';
export { gzipMiddlewareSchema, type GzipMiddlewareConfig } from '../middleware/gzip.schema.js';
export { ccryptMiddlewareSchema, type CcryptMiddlewareConfig } from '../middleware/ccrypt.schema.js';
export { zstdMiddlewareSchema, type ZstdMiddlewareConfig } from '../middleware/zstd.schema.js';
export { gpgMiddlewareSchema, type GpgMiddlewareConfig } from '../middleware/gpg.schema.js';
export { ageMiddlewareSchema, type AgeMiddlewareConfig } from '../middleware/age.schema.js';

export const targetSchema = z.union([localTargetSchema, s3TargetSchema]);

export const middlewareSchema = z
  .discriminatedUnion('type', [gzipMiddlewareSchema, ccryptMiddlewareSchema, zstdMiddlewareSchema, gpgMiddlewareSchema, ageMiddlewareSchema])
  // A discriminated union takes plain objects only, so the rules that span keys run here.
  .superRefine((m, ctx) => {
    if (m.type === 'gpg') checkGpgMiddleware(m, ctx);
    else if (m.type === 'age') checkAgeMiddleware(m, ctx);
  });

export type TargetConfig = z.infer<typeof targetSchema>;
export type MiddlewareConfig = z.infer<typeof middlewareSchema>;

// ---------------------------------------------------------------------------------------------
// Top-level config (backer.yml)
// ---------------------------------------------------------------------------------------------

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const logConfigSchema = z
  .object({
    /** Default: info. */
    level: z.enum(LOG_LEVELS).default('info'),
    /** json for machines, pretty for a terminal. Default: json. */
    format: z.enum(['json', 'pretty']).default('json'),
  })
  .strict();

export const dockerConfigSchema = z
  .object({
    /** false turns label discovery off: only static mandates without a container run. Default: true. */
    enabled: z.boolean().default(true),
    /**
     * Path of the Docker engine's unix socket, relative to the config file's directory.
     * Default: the path of DOCKER_HOST when it is `unix://PATH`, else /var/run/docker.sock.
     */
    socket_path: z.string().min(1).optional(),
    /**
     * Jobs that use the Docker engine at once (every job of a mandate with a container, and
     * restores into one): the limit per Docker host. Default: none beyond queue.concurrency.
     */
    concurrency: z.number().int().min(1).optional(),
  })
  .strict();

export const apiConfigSchema = z
  .object({
    /** Unix socket of the API, relative to the config file's directory. Default: `<data_dir>/backer.sock`. */
    socket: z.string().min(1).optional(),
    /** `HOST:PORT`: also serve the API over TCP (src/api/config.ts). Default: off (the unix socket only). */
    listen: listenSchema.optional(),
    /** `{cert_file, key_file}`: serve the TCP listener over HTTPS. Default: plain HTTP. */
    tls: tlsConfigSchema.optional(),
    /** Bearer tokens accepted over TCP: `{name, token_sha256 | token_file, scope: read|operate|admin}`. Default: none. */
    tokens: z.array(tokenConfigSchema).default([]),
  })
  .strict();

export const uiConfigSchema = z
  .object({
    /** Serve the web UI (dist/web) at `/` of the API's TCP listener (`api.listen`). Default: true (on whenever `api.listen` is set). */
    enabled: z.boolean().default(true),
    /** Directory of the built app (absolute). Default: `dist/web` of the installed package. */
    dir: z.string().min(1).refine((p) => p.startsWith('/'), 'must be an absolute path').optional(),
  })
  .strict();

export const queueConfigSchema = z
  .object({
    /** Backups that run at the same time. Default: 2. */
    concurrency: z.number().int().min(1).default(2),
    // Durations are written as strings (`30s`, `5m`, `1h30m`, src/config/duration.ts); the parsed
    // config holds them in milliseconds.
    /** Further attempts of a job after a transient failure (network, S3 5xx, container restarting). Default: 3. */
    retries: z.number().int().min(0).default(3),
    /** Wait before the first retry, doubled for each further one (with jitter). Default: 30s. Parsed: ms. */
    retry_delay: durationSchema.prefault('30s'),
    /** The longest wait between two attempts. Default: 15m. Parsed: ms. */
    retry_delay_max: durationSchema.prefault('15m'),
    /** A running job whose stream made no progress this long fails (a hung dump never blocks its mandate). Default: 30m. Parsed: ms. */
    stall_timeout: durationSchema.prefault('30m'),
    /** A waiting job gains one priority step per this much wait, so low priority never starves. Default: 10m. Parsed: ms. */
    aging: durationSchema.prefault('10m'),
    /**
     * How many steps (nice values) below Backer's own CPU priority the work it adds to a job runs:
     * the middleware programs (compressors, encryptors) and the checksum thread. The dump, the
     * database and Backer's main thread keep theirs, so that on a busy host the database gets the
     * CPU first; with cores to spare nothing changes. 0: the same priority. Default: 10.
     */
    nice: z.number().int().min(0).max(19).default(DEFAULT_WORK_NICE),
  })
  .strict();

export const CATCH_UP_MODES = ['skip', 'once'] as const;
export type CatchUpMode = (typeof CATCH_UP_MODES)[number];

export const scheduleConfigSchema = z
  .object({
    /**
     * Runs missed while the daemon was down: `once` queues one catch-up run per mandate at start
     * when a fire time was missed within catch_up_window; `skip` waits for the next fire time.
     * Default: once.
     */
    catch_up: z.enum(CATCH_UP_MODES).default('once'),
    /** How far back a missed fire time still counts for catch_up. Default: 24h. Parsed: ms. */
    catch_up_window: durationSchema.prefault('24h'),
  })
  .strict();

export const stateConfigSchema = z
  .object({
    /** Finished jobs and their events are kept this many days in the state database. Default: 90. */
    history_days: z.number().int().min(1).default(90),
  })
  .strict();

export const volumeConfigSchema = z
  .object({
    /**
     * Image of the short-lived helper container that mounts a container's volumes read-only and
     * streams them as tar (it needs `tar` on its PATH). Default: $BACKER_HELPER_IMAGE, else the
     * image of Backer's own container when the daemon runs in one, else busybox:stable.
     */
    helper_image: z.string().min(1).optional(),
    /**
     * Extra binds of the helper container, `HOST_PATH:CONTAINER_PATH[:OPTIONS]`, for helper
     * images that need host programs (e.g. `/usr:/usr:ro`). Default: none.
     */
    helper_binds: z
      .array(
        z
          .string()
          .regex(/^\/[^:]*:\/[^:]*(:[a-z,]+)?$/, 'expected HOST_PATH:CONTAINER_PATH[:OPTIONS] with absolute paths, e.g. /usr:/usr:ro')
          .refine((bind) => !/^[^:]*:\/backup(\/|:|$)/.test(bind), 'the helper mounts the volumes under /backup: use another container path'),
      )
      .default([]),
  })
  .strict();

export const verifyConfigSchema = z
  .object({
    /**
     * Cron (5 fields, or 6 with seconds first; UTC) of the scheduled verification of every mandate
     * without its own `verify`. Default: none (no scheduled verification).
     */
    interval: withJsonSchema(
      z.string().superRefine((value, ctx) => {
        const problem = checkCron(value);
        if (problem !== null) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      }),
      // Editors see the shape; `backer config check` judges each field (checkCron).
      { type: 'string', pattern: '^\\s*\\S+(\\s+\\S+){4,5}\\s*$', description: 'cron, 5 fields or 6 (seconds first), UTC' },
    ).optional(),
    /** Level of scheduled verifications of mandates without their own `verify_level`. Default: decode. */
    level: z.enum(VERIFY_LEVELS).default('decode'),
  })
  .strict();

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type Scalar = string | number | boolean;
function isScalar(value: unknown): value is Scalar {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/**
 * Checks one static mandate's value tree: nested mappings, scalars and lists of scalars only,
 * so that it can be flattened into the same `key → string` shape as container labels.
 */
function checkMandateTree(value: Record<string, unknown>, path: (string | number)[], ctx: z.RefinementCtx): void {
  for (const [key, child] of Object.entries(value)) {
    const at = [...path, key];
    if (isScalar(child)) continue;
    if (isPlainObject(child)) {
      checkMandateTree(child, at, ctx);
    } else if (Array.isArray(child)) {
      child.forEach((item, index) => {
        if (!isScalar(item)) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: [...at, index],
            message: `expected a string, number or boolean in this list, received ${describeKind(item)}`,
          });
        }
      });
    } else {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: at,
        message: `expected a string, number, boolean, list or mapping, received ${describeKind(child)} (write "" for an empty value)`,
      });
    }
  }
}

function describeKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (isPlainObject(value)) return 'a mapping';
  return typeof value;
}

/**
 * Flattens `{ mysql: { options: { single-transaction: true } } }` to
 * `{ 'mysql.options.single-transaction': 'true' }`: static mandates then go through the very same
 * parser as container labels. Lists become comma-joined strings (`[s3, local]` → `s3,local`).
 */
export function flattenMandate(value: Record<string, unknown>, prefix = '', into: Record<string, string> = {}): Record<string, string> {
  for (const [key, child] of Object.entries(value)) {
    const flatKey = prefix === '' ? key : `${prefix}.${key}`;
    if (isPlainObject(child)) flattenMandate(child, flatKey, into);
    else if (Array.isArray(child)) into[flatKey] = child.map(String).join(',');
    else into[flatKey] = String(child);
  }
  return into;
}

/** The keys written both as nested mapping and as a dotted key would silently overwrite each other. */
function duplicateFlatKeys(value: Record<string, unknown>): string[] {
  const seen = new Set<string>();
  const dupes: string[] = [];
  const walk = (node: Record<string, unknown>, prefix: string): void => {
    for (const [key, child] of Object.entries(node)) {
      const flatKey = prefix === '' ? key : `${prefix}.${key}`;
      if (isPlainObject(child)) walk(child, flatKey);
      else if (seen.has(flatKey)) dupes.push(flatKey);
      else seen.add(flatKey);
    }
  };
  walk(value, '');
  return dupes;
}

/**
 * One static mandate: the same keys as the container labels without `backer.`, nested YAML
 * allowed. Output: the flattened `key → string` record that parseMandate (src/mandates/parse.ts) reads.
 */
export const staticMandateSchema = withJsonSchema(
  z
    .record(z.string(), z.unknown())
    .superRefine((value, ctx) => {
      checkMandateTree(value, [], ctx);
      for (const key of duplicateFlatKeys(value)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [], message: `${key} is given twice (once nested, once as a dotted key)` });
      }
    })
    .transform((value) => flattenMandate(value)),
  // The tree checkMandateTree accepts; `mandate_value` is defined by json-schema.ts.
  { type: 'object', additionalProperties: { $ref: '#/definitions/mandate_value' } },
);

export const configSchema = z
  .object({
    /** State (queue, API socket), relative to the config file's directory. Default: ./backer-data. */
    data_dir: z.string().min(1).default('./backer-data'),
    /** Default: level info, format json. */
    log: logConfigSchema.prefault({}),
    /** Default: enabled, socket from DOCKER_HOST or /var/run/docker.sock. */
    docker: dockerConfigSchema.prefault({}),
    /** Default: socket `<data_dir>/backer.sock`. */
    api: apiConfigSchema.prefault({}),
    /** The web UI on the API's TCP listener. Default: enabled (it needs `api.listen`). */
    ui: uiConfigSchema.prefault({}),
    /** Prometheus metrics: `GET /metrics` on the API, and `listen` (loopback, no auth). Default: no listen. */
    metrics: metricsConfigSchema.prefault({}),
    /** Default: concurrency 2, 3 retries from 30s up to 15m apart, stall timeout 30m, aging 10m, added work at nice +10. */
    queue: queueConfigSchema.prefault({}),
    /** Missed scheduled runs. Default: one catch-up run within 24h. */
    schedule: scheduleConfigSchema.prefault({}),
    /** The state database. Default: 90 days of job history. */
    state: stateConfigSchema.prefault({}),
    /** Options of the volume source. Default: the helper image chosen at run time (see helper_image), no extra helper binds. */
    volume: volumeConfigSchema.prefault({}),
    /** Scheduled verification defaults for every mandate. Default: no schedule, level decode. */
    verify: verifyConfigSchema.prefault({}),
    /** Mandate status checks (src/status/schema.ts). Default: every mandate's status computed again every 1m. */
    status: statusConfigSchema.prefault({}),
    /** Where backups are stored. Default: none. */
    targets: z.array(targetSchema).default([]),
    /** Transforms mandates can apply, by name. Default: none. */
    middleware: z.array(middlewareSchema).default([]),
    /** Static mandates by name (the YAML twin of container labels). Default: none. */
    mandates: z.record(nameSchema, staticMandateSchema).default({}),
    /** Where to send notifications (src/notify, README "Notifications"). Default: none. */
    notifications: z.array(notificationSchema).default([]),
    /** Error reporting and Crons check-ins (src/sentry, README "Sentry"). Default: none. */
    sentry: sentryConfigSchema.optional(),
  })
  .strict();

/** The config as the schema returns it, before load-time resolution of paths. */
export type ParsedConfig = z.output<typeof configSchema>;

/**
 * The config after load (load.ts): data_dir, api.socket, docker.socket_path and local target
 * paths are absolute, and when exactly one target exists it is the default.
 */
export type BackerConfig = Omit<ParsedConfig, 'docker' | 'api' | 'notifications'> & {
  notifications: NotificationConfig[];
  docker: { enabled: boolean; socket_path: string; concurrency?: number };
  api: ApiConfig;
};
