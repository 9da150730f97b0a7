import { installCrashGuard } from '../../daemon/crash-guard.js';
import { createDaemon, type DaemonOptions } from '../../daemon/daemon.js';
import type { BackerConfig } from '../../config/schema.js';
import { loadRunConfig, type GlobalOptions } from '../context.js';

/** Resolves at the first SIGTERM/SIGINT. Listening starts at once, so a signal during start-up is not lost. */
function stopRequested(onSignal: (signal: NodeJS.Signals) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      onSignal(signal);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

/** Runs until SIGTERM/SIGINT, then stops cleanly (running backups are aborted and cleaned up). */
export async function runDaemon(config: BackerConfig, configFile: string, extra: Partial<DaemonOptions> = {}): Promise<number> {
  const daemon = createDaemon({ config, configFile, ...extra });
  // The API answers before start() has finished: a SIGTERM sent then must stop the daemon cleanly
  // (after start-up), not kill it with Node's default signal action.
  const stopped = stopRequested((signal) => daemon.services.logger.info({ signal }, 'signal received'));
  // From here on an error that escapes every handler fails its backup, never the daemon.
  const uninstallGuard = installCrashGuard(daemon.services.logger);
  try {
    await daemon.start();
    await stopped;
  } finally {
    // Also after a failed start: a half-started daemon would keep the process alive and its socket behind.
    await daemon.close();
    uninstallGuard();
  }
  return 0;
}

export async function daemonCommand(options: GlobalOptions): Promise<number> {
  const { config, path } = await loadRunConfig(options);
  return runDaemon(config, path);
}
