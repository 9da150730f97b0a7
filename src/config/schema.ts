import { z } from 'zod';

/** Names of targets, middleware and mandates end up in object keys and file names. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const nameSchema = z
  .string()
  .regex(NAME_PATTERN, 'expected a name of letters, digits, "_", "." or "-" (starting with a letter or digit)');

const targetBase = {
  name: nameSchema,
  /** The target used by mandates that name none. Default: false. */
  default: z.boolean().default(false),
};

export const localTargetSchema = z
  .object({
    ...targetBase,
    type: z.literal('local'),
    /** Directory that holds `<mandate>/<name><ext>` and the manifests. Created when missing. */
    path: z.string().min(1),
  })
  .strict();

export const s3TargetSchema = z
  .object({
    ...targetBase,
    type: z.literal('s3'),
    bucket: z.string().min(3).max(63),
    /** Prepended to every key, e.g. `backups/`. Default: "". */
    prefix: z.string().default(''),
    /** For S3-compatible servers, e.g. `http://127.0.0.1:9000`. Default: AWS. */
    endpoint: z.string().url().optional(),
    /** Default: us-east-1. */
    region: z.string().min(1).default('us-east-1'),
    /** Path-style addressing (most S3-compatible servers need it). Default: false. */
    force_path_style: z.boolean().default(false),
    /** Default: the AWS SDK's credential chain (environment, profile, instance role). */
    access_key_id: z.string().min(1).optional(),
    secret_access_key: z.string().min(1).optional(),
    /** Multipart part size in MiB (5..5120). Default: 16 (fits 160 GiB under the 10000-part limit). */
    part_size_mb: z.number().int().min(5).max(5120).default(16),
    /** Parts uploaded at once. Default: 4. Memory per upload is about part_size_mb × queue_size. */
    queue_size: z.number().int().min(1).max(64).default(4),
    /** e.g. STANDARD_IA. Default: the bucket's default. */
    storage_class: z.string().min(1).optional(),
    /** e.g. AES256 or aws:kms. Default: none. */
    server_side_encryption: z.string().min(1).optional(),
  })
  .strict()
  .refine((t) => (t.access_key_id === undefined) === (t.secret_access_key === undefined), {
    message: 'access_key_id and secret_access_key must be given together',
    path: ['secret_access_key'],
  });

export const targetSchema = z.union([localTargetSchema, s3TargetSchema]);

export const gzipMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('gzip'),
    /** 1 (fast) .. 9 (small). Default: 6. */
    level: z.number().int().min(1).max(9).default(6),
  })
  .strict();

export const ccryptMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('ccrypt'),
    /** The ccrypt keyword. Use `${VAR}` to take it from Backer's environment. */
    key: z.string().min(1),
  })
  .strict();

export const middlewareSchema = z.discriminatedUnion('type', [gzipMiddlewareSchema, ccryptMiddlewareSchema]);

export type LocalTargetConfig = z.infer<typeof localTargetSchema>;
export type S3TargetConfig = z.infer<typeof s3TargetSchema>;
export type TargetConfig = z.infer<typeof targetSchema>;
export type GzipMiddlewareConfig = z.infer<typeof gzipMiddlewareSchema>;
export type CcryptMiddlewareConfig = z.infer<typeof ccryptMiddlewareSchema>;
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
  })
  .strict();

export const apiConfigSchema = z
  .object({
    /** Unix socket of the API, relative to the config file's directory. Default: `<data_dir>/backer.sock`. */
    socket: z.string().min(1).optional(),
  })
  .strict();

export const queueConfigSchema = z
  .object({
    /** Backups that run at the same time. Default: 2. */
    concurrency: z.number().int().min(1).default(2),
  })
  .strict();

export const volumeConfigSchema = z
  .object({
    /**
     * Image of the short-lived helper container that mounts a container's volumes read-only and
     * streams them as tar (it needs `tar` on its PATH). Default: busybox:stable.
     */
    helper_image: z.string().min(1).default('busybox:stable'),
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
 * allowed. Output: the flattened `key → string` record that parseMandate (mandate.ts) reads.
 */
export const staticMandateSchema = z
  .record(z.string(), z.unknown())
  .superRefine((value, ctx) => {
    checkMandateTree(value, [], ctx);
    for (const key of duplicateFlatKeys(value)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: [], message: `${key} is given twice (once nested, once as a dotted key)` });
    }
  })
  .transform((value) => flattenMandate(value));

export const configSchema = z
  .object({
    /** State (queue, API socket), relative to the config file's directory. Default: ./backer-data. */
    data_dir: z.string().min(1).default('./backer-data'),
    /** Default: level info, format json. */
    log: logConfigSchema.default({}),
    /** Default: enabled, socket from DOCKER_HOST or /var/run/docker.sock. */
    docker: dockerConfigSchema.default({}),
    /** Default: socket `<data_dir>/backer.sock`. */
    api: apiConfigSchema.default({}),
    /** Default: concurrency 2. */
    queue: queueConfigSchema.default({}),
    /** Options of the volume source. Default: helper image busybox:stable. */
    volume: volumeConfigSchema.default({}),
    /** Where backups are stored. Default: none. */
    targets: z.array(targetSchema).default([]),
    /** Transforms mandates can apply, by name. Default: none. */
    middleware: z.array(middlewareSchema).default([]),
    /** Static mandates by name (the YAML twin of container labels). Default: none. */
    mandates: z.record(nameSchema, staticMandateSchema).default({}),
  })
  .strict();

/** The config as the schema returns it, before load-time resolution of paths. */
export type ParsedConfig = z.output<typeof configSchema>;

/**
 * The config after load (load.ts): data_dir, api.socket, docker.socket_path and local target
 * paths are absolute, and when exactly one target exists it is the default.
 */
export type BackerConfig = Omit<ParsedConfig, 'docker' | 'api'> & {
  docker: { enabled: boolean; socket_path: string };
  api: { socket: string };
};
