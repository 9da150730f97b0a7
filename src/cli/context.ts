import { readFile } from 'node:fs/promises';
import { BackerError } from '../errors.js';
import type { Endpoint } from './client.js';
import { configInvalid, findConfigPath, loadConfigOrThrow } from '../config/load.js';
import type { BackerConfig } from '../config/schema.js';
import { loadDemoConfig } from './demo-config.js';

export interface GlobalOptions {
  config?: string;
  /** Use the embedded demo config instead of a file. */
  demo?: boolean;
  json?: boolean;
  /** The daemon's API over TCP (`http(s)://HOST:PORT[/prefix]`) instead of the config's socket; also BACKER_URL. */
  url?: string;
  /** A file holding the bearer token for --url; also BACKER_TOKEN_FILE. */
  tokenFile?: string;
}

export interface LoadedConfig {
  config: BackerConfig;
  path: string;
}

export async function loadCliConfig(options: GlobalOptions): Promise<LoadedConfig> {
  if (options.demo) return loadDemoConfig();
  const path = await findConfigPath(options.config, process.env);
  const config = await loadConfigOrThrow(path, process.env);
  return { config, path };
}

/**
 * For the commands that run backups (`daemon`, `backup --once`): like loadCliConfig, and an
 * invalid static mandate is a config error too (CONFIG_INVALID listing every problem with its
 * path). Container labels stay non-fatal: such containers are reported and skipped.
 */
export async function loadRunConfig(options: GlobalOptions): Promise<LoadedConfig> {
  const loaded = await loadCliConfig(options);
  const { config, path } = loaded;
  // Imported here, not at the top: the commands that only talk to the daemon never load them, and
  // Docker's client (dockerode, with gRPC) is loaded only when Docker is on.
  const [{ buildSnapshot, staticMandateProblems }, { sources }, { dockerClient }] = await Promise.all([import('../discovery/snapshot.js'), import('../sources/index.js'), import('../daemon/docker-client.js')]);
  const docker = config.docker.enabled ? dockerClient(config.docker.socket_path) : null;
  const problems = staticMandateProblems(await buildSnapshot(docker, config, sources, path), path);
  if (problems.length > 0) throw configInvalid(path, problems);
  return loaded;
}

function usage(message: string, details: Record<string, unknown>): BackerError {
  return new BackerError('USAGE_INVALID', message, { component: 'cli', details });
}

async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw usage(`cannot read the token file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { token_file: path });
  }
  const token = text.trim();
  if (token === '') throw usage(`the token file ${path} is empty`, { token_file: path });
  return token;
}

/**
 * Where the API is: `--url` (or BACKER_URL) with the token of `--token-file` (or BACKER_TOKEN_FILE),
 * else the unix socket of the config (the config file is not read with a URL). The token is never
 * taken from argv: command lines are visible to every local user.
 */
export async function apiEndpoint(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Promise<Endpoint> {
  const url = options.url ?? (env.BACKER_URL === '' ? undefined : env.BACKER_URL);
  const tokenFile = options.tokenFile ?? (env.BACKER_TOKEN_FILE === '' ? undefined : env.BACKER_TOKEN_FILE);
  if (url === undefined) {
    if (options.tokenFile !== undefined) throw usage('--token-file needs --url (or BACKER_URL); over the socket no token is used', {});
    return { kind: 'socket', socket: (await loadCliConfig(options)).config.api.socket };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`--url ${url}: not a URL; expected http(s)://HOST:PORT`, { url });
  }
  if (parsed.username !== '' || parsed.password !== '') throw usage('--url must not hold credentials; put the token in a file and pass --token-file', {});
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usage(`--url ${url}: expected http:// or https://`, { url });
  return { kind: 'url', url: parsed, token: tokenFile === undefined ? null : await readTokenFile(tokenFile) };
}
