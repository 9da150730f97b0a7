import { readFile } from 'node:fs/promises';
import { installCrashGuard } from '../../daemon/crash-guard.js';
import { createDaemon, type Daemon, type DaemonOptions } from '../../daemon/daemon.js';
import { formatProblems, loadConfig } from '../../config/load.js';
import type { BackerConfig } from '../../config/schema.js';
import { describeError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import { missingTools } from '../../plugins/tools.js';
import { flushCompileCache } from '../compile-cache.js';
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

type Phase = 'starting' | 'running' | 'stopping';

/**
 * The running daemon never applies a changed config file (targets, middleware, static mandates
 * would have to be rebuilt under running backups): it says that the file changed, and whether a
 * restart with it would fail. `startText` is the file as read at start; null when there is none (demo).
 */
async function reportConfigChange(configFile: string, startText: string | null, logger: Logger): Promise<void> {
  if (startText === null) return;
  const text = await readFile(configFile, 'utf8').catch((err: unknown) => {
    logger.warn({ config: configFile, err: describeError(err) }, 'config file cannot be read; the daemon keeps the config it started with');
    return null;
  });
  if (text === null || text === startText) return;
  logger.warn({ config: configFile }, 'config file changed since start; restart backer to apply it (the daemon keeps the config it started with)');
  const { problems } = await loadConfig(configFile, process.env);
  if (problems.length > 0) logger.error({ config: configFile }, `the changed config file has problems, a restart would fail:\n${formatProblems(problems)}`);
}

/**
 * SIGHUP (`systemctl reload backer`) lists the containers again at once (labels re-read) and
 * reports a changed config file. Without a handler Node would exit on SIGHUP. Returns the uninstaller.
 */
function reloadOnHangup(daemon: Daemon, configFile: string, startText: string | null, phase: () => Phase): () => void {
  const logger = daemon.services.logger;
  const reload = async (): Promise<void> => {
    if (phase() !== 'running') {
      logger.info({ phase: phase() }, 'reload ignored while the daemon is starting or stopping');
      return;
    }
    logger.info('reload requested: listing containers again; config file changes need a restart');
    await reportConfigChange(configFile, startText, logger);
    const snapshot = await daemon.services.discovery.refresh();
    logger.info({ mandates: snapshot.mandates.map((m) => m.name), skipped: snapshot.skipped.map((m) => m.name) }, 'reload done');
  };
  const onHangup = (): void => {
    reload().catch((err: unknown) => logger.error({ err: describeError(err) }, 'reload failed'));
  };
  process.on('SIGHUP', onHangup);
  return () => process.off('SIGHUP', onHangup);
}

/**
 * A program a target or middleware needs that is not on PATH is a warning, not a reason to refuse
 * to start: only the backups that use that entry fail, each with the plugin's own clear error.
 */
async function warnMissingTools(config: BackerConfig, configFile: string, logger: Logger): Promise<void> {
  for (const problem of await missingTools(config, configFile)) {
    logger.warn({ where: problem.where }, `${problem.where}: ${problem.message}; the backups that use it will fail`);
  }
}

/** Runs until SIGTERM/SIGINT, then stops cleanly (running backups are aborted and cleaned up). SIGHUP: see reloadOnHangup. */
export async function runDaemon(config: BackerConfig, configFile: string, extra: Partial<DaemonOptions> = {}): Promise<number> {
  // Read right after the config was loaded: what a later SIGHUP compares the file with.
  const startText = await readFile(configFile, 'utf8').catch(() => null);
  const daemon = createDaemon({ config, configFile, ...extra });
  let phase: Phase = 'starting';
  // The API answers before start() has finished: a SIGTERM sent then must stop the daemon cleanly
  // (after start-up), not kill it with Node's default signal action.
  const stopped = stopRequested((signal) => {
    phase = 'stopping';
    daemon.services.logger.info({ signal }, 'signal received');
  });
  const uninstallReload = reloadOnHangup(daemon, configFile, startText, () => phase);
  // From here on an error that escapes every handler fails its backup, never the daemon.
  const uninstallGuard = installCrashGuard(daemon.services.logger);
  try {
    await warnMissingTools(config, configFile, daemon.services.logger);
    await daemon.start();
    if (phase === 'starting') phase = 'running';
    // What start-up compiled goes to disk now: a daemon may end by SIGKILL, never writing it at exit.
    flushCompileCache();
    await stopped;
  } finally {
    phase = 'stopping';
    // Also after a failed start: a half-started daemon would keep the process alive and its socket behind.
    await daemon.close();
    uninstallGuard();
    uninstallReload();
  }
  return 0;
}

export async function daemonCommand(options: GlobalOptions): Promise<number> {
  const { config, path } = await loadRunConfig(options);
  return runDaemon(config, path);
}
