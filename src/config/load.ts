import { access, readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import { BackerError } from '../errors.js';
import { expandEnvInDocument, type Env } from './env.js';
import { concealerFor, concealExpansions, parseWithExpansions, recordExpansions } from './expanded.js';
import { resolveMandateRefs } from './mandate-refs.js';
import { parseBoolean } from './boolean.js';
import { invalidRefsFrom, issuePath, NO_INVALID_REFS, problemsFromZod, UNKNOWN_REFS, whereIn, type ConfigProblem, type InvalidRefs } from './problems.js';
import { configSchema, type BackerConfig, type ParsedConfig } from './schema.js';
import { resolveNotifications } from '../notify/config.js';
import { resolveApiTransport } from '../api/config.js';

/** Config files looked for in the working directory when neither --config nor BACKER_CONFIG is given. */
export const DEFAULT_CONFIG_FILES = ['backer.yml', 'backer.yaml'] as const;
/** Used when neither docker.socket_path nor a unix:// DOCKER_HOST is given. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export interface LoadResult {
  /** Best effort when there are problems: parts with problems fall back to their defaults. */
  config: BackerConfig;
  /** Empty when the config is valid. */
  problems: ConfigProblem[];
  /** Targets and middleware dropped for problems of their own (mandates naming them are not reported again). */
  invalidRefs: InvalidRefs;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The config file to read: `cliPath` (--config), else BACKER_CONFIG, else backer.yml or
 * backer.yaml in `cwd`. A path named explicitly must exist: falling back to another file would
 * run a config the user did not ask for.
 */
export async function findConfigPath(cliPath: string | undefined, env: Env, cwd: string = process.cwd()): Promise<string> {
  const fromEnv = env.BACKER_CONFIG !== undefined && env.BACKER_CONFIG !== '' ? env.BACKER_CONFIG : undefined;
  const explicit = cliPath ?? fromEnv;
  const candidates = explicit !== undefined ? [explicit] : DEFAULT_CONFIG_FILES.map((name) => name as string);
  for (const candidate of candidates) {
    if (await exists(resolve(cwd, candidate))) return resolve(cwd, candidate);
  }
  const how = cliPath !== undefined ? ' (from --config)' : fromEnv !== undefined ? ' (from BACKER_CONFIG)' : '';
  throw new BackerError(
    'CONFIG_NOT_FOUND',
    `no config file: tried ${candidates.map((c) => resolve(cwd, c)).join(', ')}${how}; pass --config PATH or set BACKER_CONFIG`,
    { component: 'config', details: { tried: candidates.map((c) => resolve(cwd, c)) } },
  );
}

/** Reads and validates a config file. Never throws for invalid content, only for an unreadable file. */
export async function loadConfig(path: string, env: Env): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new BackerError(missing ? 'CONFIG_NOT_FOUND' : 'CONFIG_INVALID', `cannot read config file ${path}`, {
      component: 'config',
      details: { path },
      cause: err,
    });
  }
  return parseConfigText(text, path, env, dirname(resolve(path)));
}

/** loadConfig, but any problem throws CONFIG_INVALID listing them all (details.problems). */
export async function loadConfigOrThrow(path: string, env: Env): Promise<BackerConfig> {
  const { config, problems } = await loadConfig(path, env);
  if (problems.length > 0) throw configInvalid(path, problems);
  return config;
}

/** The CONFIG_INVALID error for a list of problems, its message listing each on its own line. */
export function configInvalid(fileLabel: string, problems: ConfigProblem[]): BackerError {
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new BackerError('CONFIG_INVALID', `${fileLabel} has ${count}:\n${formatProblems(problems)}`, {
    component: 'config',
    details: { path: fileLabel, problems },
    permanent: true,
  });
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `  ${p.where}: ${p.message}`).join('\n');
}

function yamlProblem(error: YAMLError, fileLabel: string, lines: LineCounter): ConfigProblem {
  const { line, col } = lines.linePos(error.pos[0]);
  return { where: `${fileLabel}:${line}:${col}`, message: error.message };
}

/**
 * Parses config text: YAML, then `${VAR}` expansion, then the schema, then path resolution
 * against `baseDir`, then the rules that span several entries. Pure apart from reading `env`.
 */
export function parseConfigText(text: string, fileLabel: string, env: Env, baseDir: string): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  // After a syntax error the parser's further errors are mostly echoes of the first one.
  const firstError = doc.errors[0];
  const problems: ConfigProblem[] = (firstError === undefined ? doc.warnings : [firstError]).map((e) => yamlProblem(e, fileLabel, lines));
  if (firstError !== undefined) return { config: resolveConfig(configSchema.parse({}), env, baseDir, fileLabel, []), problems, invalidRefs: UNKNOWN_REFS };

  const expansion = expandEnvInDocument(doc, env, fileLabel);
  problems.push(...expansion.problems);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    problems.push({ where: fileLabel, message: err instanceof Error ? err.message : String(err) });
    data = {};
  }

  let parsed: ParsedConfig;
  let invalidRefs = NO_INVALID_REFS;
  const result = parseWithExpansions(configSchema, data, expansion.expansions);
  if (result.success) {
    parsed = result.data;
  } else {
    problems.push(...problemsFromZod(result.error, fileLabel, configSchema, data, concealerFor(expansion.expansions)));
    invalidRefs = invalidRefsFrom(data, result.error.issues);
    const retry = configSchema.safeParse(withoutBadParts(data, result.error.issues));
    parsed = retry.success ? retry.data : configSchema.parse({});
  }
  const config = resolveConfig(parsed, env, baseDir, fileLabel, problems);
  problems.push(...crossRules(config, fileLabel, invalidRefs));
  // No problem may show a value that came from the environment: it may be a secret.
  recordExpansions(config, expansion.expansions, env);
  return { config, problems: concealExpansions(problems, expansion.expansions, env), invalidRefs };
}

/** Drops every entry an issue points into, so the rest of the config can still be used. */
function withoutBadParts(data: unknown, issues: readonly { path: readonly PropertyKey[]; code?: string; keys?: string[] }[]): unknown {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return {};
  const copy: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  const badItems = new Map<string, Set<number>>();
  for (const issue of issues) {
    const [top, second] = issuePath(issue);
    if (top === undefined) {
      for (const key of issue.keys ?? []) delete copy[key];
      if (issue.keys === undefined) return {};
    } else if (typeof second === 'number' && Array.isArray(copy[top])) {
      badItems.set(String(top), (badItems.get(String(top)) ?? new Set()).add(second));
    } else if (top === 'mandates' && typeof second === 'string' && typeof copy.mandates === 'object' && copy.mandates !== null) {
      const mandates = { ...(copy.mandates as Record<string, unknown>) };
      delete mandates[second];
      copy.mandates = mandates;
    } else {
      delete copy[top];
    }
  }
  for (const [key, bad] of badItems) {
    const items = copy[key];
    if (Array.isArray(items)) copy[key] = items.filter((_, index) => !bad.has(index));
  }
  return copy;
}

function dockerSocket(parsed: ParsedConfig, env: Env, baseDir: string, fileLabel: string, problems: ConfigProblem[]): string {
  if (parsed.docker.socket_path !== undefined) return resolve(baseDir, parsed.docker.socket_path);
  const host = env.DOCKER_HOST;
  if (host === undefined || host === '') return DEFAULT_DOCKER_SOCKET;
  if (host.startsWith('unix://') && host.length > 'unix://'.length) return resolve(host.slice('unix://'.length));
  if (parsed.docker.enabled) {
    problems.push({
      where: 'environment DOCKER_HOST',
      message: `expected unix:///path/to/docker.sock, received ${JSON.stringify(host)}; Backer reaches Docker through a unix socket: set docker.socket_path in ${fileLabel}`,
    });
  }
  return DEFAULT_DOCKER_SOCKET;
}

/** Linux keeps a unix socket's path in 108 bytes, the last one a NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

function apiSocket(parsed: ParsedConfig, dataDir: string, baseDir: string, fileLabel: string, problems: ConfigProblem[]): string {
  const socket = parsed.api.socket === undefined ? resolve(dataDir, 'backer.sock') : resolve(baseDir, parsed.api.socket);
  const bytes = Buffer.byteLength(socket, 'utf8');
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    const from = parsed.api.socket === undefined ? ' (the default <data_dir>/backer.sock)' : '';
    problems.push({
      where: whereIn(fileLabel, ['api', 'socket']),
      message: `the socket path ${socket}${from} is ${bytes} bytes long; unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}: set a shorter api.socket`,
    });
  }
  return socket;
}

/** Makes every path absolute (relative ones are relative to the config file) and fills defaults. */
function resolveConfig(parsed: ParsedConfig, env: Env, baseDir: string, fileLabel: string, problems: ConfigProblem[]): BackerConfig {
  const dataDir = resolve(baseDir, parsed.data_dir);
  const targets = parsed.targets.map((t) => (t.type === 'local' ? { ...t, path: resolve(baseDir, t.path) } : t));
  // With a single target there is nothing to choose from: it is the default.
  const only = targets.length === 1 ? targets[0] : undefined;
  if (only !== undefined) only.default = true;
  return {
    ...parsed,
    data_dir: dataDir,
    docker: { ...parsed.docker, socket_path: dockerSocket(parsed, env, baseDir, fileLabel, problems) },
    api: { socket: apiSocket(parsed, dataDir, baseDir, fileLabel, problems), ...resolveApiTransport(parsed.api, baseDir, fileLabel, problems) },
    targets,
    notifications: resolveNotifications(parsed.notifications, baseDir, fileLabel, problems),
  };
}

function uniqueNames(items: readonly { name: string }[], list: 'targets' | 'middleware', fileLabel: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const first = new Map<string, number>();
  items.forEach((item, index) => {
    const earlier = first.get(item.name);
    if (earlier === undefined) first.set(item.name, index);
    else problems.push({ where: whereIn(fileLabel, [list, index, 'name']), message: `duplicate name ${JSON.stringify(item.name)}: ${list}[${earlier}] has it too` });
  });
  return problems;
}

/** Rules that span entries: unique names, one default target, mandates naming what exists. */
function crossRules(config: BackerConfig, fileLabel: string, invalidRefs: InvalidRefs): ConfigProblem[] {
  const problems = [...uniqueNames(config.targets, 'targets', fileLabel), ...uniqueNames(config.middleware, 'middleware', fileLabel)];
  const defaults = config.targets.flatMap((t, index) => (t.default ? [index] : []));
  for (const index of defaults.slice(1)) {
    problems.push({ where: whereIn(fileLabel, ['targets', index, 'default']), message: `only one target may have default: true; targets[${defaults[0]}] already has it` });
  }
  for (const [name, raw] of Object.entries(config.mandates)) {
    // Like parseMandate: a switched-off mandate is not judged.
    if (raw.enabled !== undefined && parseBoolean(raw.enabled) === false) continue;
    resolveMandateRefs(raw, config, (key, message) => problems.push({ where: whereIn(fileLabel, ['mandates', name, key]), message }), invalidRefs);
  }
  return problems;
}
