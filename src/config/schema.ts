import { isAbsolute } from 'node:path';
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

/**
 * A permission mode as an octal string in quotes ("0640"). A YAML number is refused: YAML 1.2
 * reads 0640 as decimal 640, which would silently be a different mode. `ownerNeeds` are the
 * bits Backer itself needs (it writes and reads its own files).
 */
function modeSchema(kind: 'file' | 'directory', ownerNeeds: number): z.ZodType<string, z.ZodTypeDef, unknown> {
  const example = kind === 'file' ? '"0640"' : '"0750"';
  return z
    .custom<string>((v) => typeof v === 'string', { message: `expected an octal mode in quotes, such as ${example}` })
    .refine((v) => /^0?[0-7]{3}$/.test(v), { message: `expected an octal mode such as ${example} (three octal digits, optionally after a 0)` })
    .refine((v) => (parseInt(v, 8) & ownerNeeds) === ownerNeeds, {
      message: `the owner (Backer) needs ${ownerNeeds.toString(8).padStart(4, '0')} on every ${kind}`,
    });
}

export const localTargetSchema = z
  .object({
    ...targetBase,
    type: z.literal('local'),
    /** Directory that holds `<mandate>/<name><ext>` and the manifests. Created when missing. */
    path: z.string().min(1),
    /** Mode of artifacts and manifests, an octal string such as "0640". Default: "0600" (owner only). */
    file_mode: modeSchema('file', 0o600).optional(),
    /** Mode of the directories Backer creates, e.g. "0750". Default: "0700". Existing ones are left as they are. */
    dir_mode: modeSchema('directory', 0o700).optional(),
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

export const zstdMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('zstd'),
    /** 1 (fast) .. 19 (small). Default: 3. */
    level: z.number().int().min(1).max(19).default(3),
    /** Worker threads (`zstd -T`); 0 = one per core. Default: 1. */
    threads: z.number().int().min(0).max(256).default(1),
  })
  .strict();

const absolutePath = z.string().min(1).refine(isAbsolute, 'expected an absolute path');
const PGP_PUBLIC_KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const PGP_PRIVATE_KEY = '-----BEGIN PGP PRIVATE KEY BLOCK-----';

/** Either `passphrase` (symmetric) or public keys; the rules are in checkGpgMiddleware. */
export const gpgMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('gpg'),
    /** Symmetric mode (AES256): one line, handed to gpg on a file descriptor. Use `${VAR}`. Default: none. */
    passphrase: z.string().min(1).optional(),
    /** Public-key mode: ASCII-armored public keys to encrypt to. Default: none. */
    public_keys: z.array(z.string().min(1)).default([]),
    /** Public-key mode: absolute paths of key files; every key in a file is a recipient. Default: none. */
    public_key_files: z.array(absolutePath).default([]),
    /** Public-key mode, to decode (restore, verify): the ASCII-armored private key. Default: none (encode only). */
    private_key: z.string().min(1).optional(),
    /** Like private_key, read from this absolute path at first decode. Default: none. */
    private_key_file: absolutePath.optional(),
    /** Unlocks a protected private key; one line. Default: none (key not protected). */
    private_key_passphrase: z.string().min(1).optional(),
  })
  .strict();

/** Either recipients or recipients_file; the rules are in checkAgeMiddleware. */
export const ageMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('age'),
    /** Public keys to encrypt to: `age1…`, `ssh-ed25519 …` or `ssh-rsa …`. Default: none. */
    recipients: z.array(z.string().min(1)).default([]),
    /** Absolute path of a recipients file (`age -R`): one recipient a line, `#` comments. Default: none. */
    recipients_file: absolutePath.optional(),
    /** To decode (restore, verify): the secret key(s), `AGE-SECRET-KEY-1…`, as in an identity file. Default: none (encode only). */
    identity: z.string().min(1).optional(),
    /** Like identity, the absolute path of an identity file (`age -i`). Default: none. */
    identity_file: absolutePath.optional(),
    /** Refused: the age program reads passphrases only from a terminal, which a daemon does not have. */
    passphrase: z
      .custom<never>(() => false, {
        message: 'age reads passphrases only from a terminal, which Backer does not have: use recipients (age-keygen) instead',
      })
      .optional(),
  })
  .strict();

function checkGpgMiddleware(m: z.infer<typeof gpgMiddlewareSchema>, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  const symmetric = m.passphrase !== undefined;
  const publicKey = m.public_keys.length > 0 || m.public_key_files.length > 0;
  if (!symmetric && !publicKey) issue([], 'gpg needs either passphrase or public_keys/public_key_files');
  if (symmetric && publicKey) issue(['passphrase'], 'gpg takes either passphrase or public_keys/public_key_files, not both');
  for (const key of ['passphrase', 'private_key_passphrase'] as const) {
    if (/[\r\n]/.test(m[key] ?? '')) issue([key], 'must be a single line: gpg reads only the first line');
  }
  m.public_keys.forEach((key, index) => {
    if (key.includes(PGP_PRIVATE_KEY)) issue(['public_keys', index], 'this is a private key: public_keys take public keys only (the private key goes in private_key)');
    else if (!key.includes(PGP_PUBLIC_KEY)) issue(['public_keys', index], `expected an ASCII-armored public key (${PGP_PUBLIC_KEY}…)`);
  });
  const hasPrivate = m.private_key !== undefined || m.private_key_file !== undefined;
  if (hasPrivate && symmetric) {
    issue([m.private_key !== undefined ? 'private_key' : 'private_key_file'], 'only for public-key mode: with passphrase, decoding uses the passphrase');
  }
  if (m.private_key !== undefined && m.private_key_file !== undefined) issue(['private_key_file'], 'give private_key or private_key_file, not both');
  if (m.private_key !== undefined && !m.private_key.includes(PGP_PRIVATE_KEY)) {
    issue(['private_key'], `expected an ASCII-armored private key (${PGP_PRIVATE_KEY}…)`);
  }
  if (m.private_key_passphrase !== undefined && !hasPrivate) {
    issue(['private_key_passphrase'], 'unlocks private_key or private_key_file, and neither is given');
  }
}

const AGE_RECIPIENT = /^(age1[0-9a-z]+|ssh-(ed25519|rsa) \S+( .*)?)$/;

function checkAgeMiddleware(m: z.infer<typeof ageMiddlewareSchema>, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  if (m.passphrase !== undefined) return; // already refused, and the recipients message would only add noise
  if (m.recipients.length === 0 && m.recipients_file === undefined) issue([], 'age needs recipients or recipients_file');
  m.recipients.forEach((recipient, index) => {
    if (recipient.includes('AGE-SECRET-KEY-')) issue(['recipients', index], 'this is a secret key: recipients take public keys (age1…), the secret key goes in identity');
    else if (!AGE_RECIPIENT.test(recipient.trim())) issue(['recipients', index], 'expected an age public key (age1…) or an SSH public key (ssh-ed25519 …, ssh-rsa …)');
  });
  if (m.identity !== undefined && m.identity_file !== undefined) issue(['identity_file'], 'give identity or identity_file, not both');
  if (m.identity !== undefined && !m.identity.includes('AGE-SECRET-KEY-') && !m.identity.includes('PRIVATE KEY-----')) {
    issue(['identity'], 'expected an age secret key (AGE-SECRET-KEY-1…) or an SSH private key');
  }
}

export const middlewareSchema = z
  .discriminatedUnion('type', [gzipMiddlewareSchema, ccryptMiddlewareSchema, zstdMiddlewareSchema, gpgMiddlewareSchema, ageMiddlewareSchema])
  // A discriminated union takes plain objects only, so the rules that span keys run here.
  .superRefine((m, ctx) => {
    if (m.type === 'gpg') checkGpgMiddleware(m, ctx);
    else if (m.type === 'age') checkAgeMiddleware(m, ctx);
  });

export type LocalTargetConfig = z.infer<typeof localTargetSchema>;
export type S3TargetConfig = z.infer<typeof s3TargetSchema>;
export type TargetConfig = z.infer<typeof targetSchema>;
export type GzipMiddlewareConfig = z.infer<typeof gzipMiddlewareSchema>;
export type CcryptMiddlewareConfig = z.infer<typeof ccryptMiddlewareSchema>;
export type ZstdMiddlewareConfig = z.infer<typeof zstdMiddlewareSchema>;
export type GpgMiddlewareConfig = z.infer<typeof gpgMiddlewareSchema>;
export type AgeMiddlewareConfig = z.infer<typeof ageMiddlewareSchema>;
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
    /** Options of the volume source. Default: the helper image chosen at run time (see helper_image), no extra helper binds. */
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
