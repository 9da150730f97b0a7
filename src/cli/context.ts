import Docker from 'dockerode';
import { configInvalid, findConfigPath, loadConfigOrThrow } from '../config/load.js';
import type { BackerConfig } from '../config/schema.js';
import { buildSnapshot, staticMandateProblems } from '../discovery/snapshot.js';
import { sources } from '../sources/index.js';
import { loadDemoConfig } from './demo-config.js';

export interface GlobalOptions {
  config?: string;
  /** Use the embedded demo config instead of a file. */
  demo?: boolean;
  json?: boolean;
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
  const docker = config.docker.enabled ? new Docker({ socketPath: config.docker.socket_path }) : null;
  const problems = staticMandateProblems(await buildSnapshot(docker, config, sources, path), path);
  if (problems.length > 0) throw configInvalid(path, problems);
  return loaded;
}
