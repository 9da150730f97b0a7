import { findConfigPath, loadConfigOrThrow } from '../config/load.js';
import type { BackerConfig } from '../config/schema.js';
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
