import { createDaemon, type DaemonOptions } from '../../daemon/daemon.js';
import type { BackerConfig } from '../../config/schema.js';
import { loadCliConfig, type GlobalOptions } from '../context.js';

/** Runs until SIGTERM/SIGINT, then stops cleanly (running backups are aborted and cleaned up). */
export async function runDaemon(config: BackerConfig, configFile: string, extra: Partial<DaemonOptions> = {}): Promise<number> {
  const daemon = createDaemon({ config, configFile, ...extra });
  await daemon.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      daemon.services.logger.info({ signal }, 'signal received');
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await daemon.close();
  return 0;
}

export async function daemonCommand(options: GlobalOptions): Promise<number> {
  const { config, path } = await loadCliConfig(options);
  return runDaemon(config, path);
}
