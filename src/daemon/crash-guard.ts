import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { currentJobScope } from '../pipeline/job-scope.js';

export type CrashKind = 'unhandledRejection' | 'uncaughtException';

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(`non-error value thrown: ${describeError(value)}`);
}

/** Who else hears of an escaped error (Sentry): the error, how it escaped, and the mandate it was charged to. */
export type EscapedErrorListener = (err: Error, kind: CrashKind, mandate: string | undefined) => void;
const listeners = new Set<EscapedErrorListener>();

/** Adds a listener of escaped errors; returns the function that removes it. */
export function onEscapedError(listener: EscapedErrorListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Handles an error that escaped every handler. Node would end the process (and with it every
 * backup in flight, and leave containers stopped for a copy): instead it is logged with its stack
 * and charged to the backup it belongs to, when the async context tells which one. An error
 * outside any backup is logged and the daemon goes on.
 */
export function handleEscapedError(logger: Logger, kind: CrashKind, value: unknown): void {
  const err = asError(value);
  const scope = currentJobScope();
  const context = { kind, err: describeError(err), stack: err.stack, mandate: scope?.mandate, backup: scope?.backup };
  if (scope) {
    logger.error(context, 'unexpected error in a backup: the backup fails, the daemon goes on');
    scope.fail(err);
  } else {
    logger.error(context, 'unexpected error outside any backup: the daemon goes on');
  }
  for (const listener of listeners) {
    try {
      listener(err, kind, scope?.mandate);
    } catch (failure) {
      // A reporter that fails must not turn one escaped error into another.
      logger.error({ err: describeError(failure) }, 'an escaped-error listener failed');
    }
  }
}

/**
 * Installs `unhandledRejection` and `uncaughtException` handlers for this process; returns a
 * function that removes them again. Installed by `backer daemon` and `backer backup --once`.
 */
export function installCrashGuard(logger: Logger): () => void {
  const onRejection = (reason: unknown): void => handleEscapedError(logger, 'unhandledRejection', reason);
  const onException = (err: Error): void => handleEscapedError(logger, 'uncaughtException', err);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
