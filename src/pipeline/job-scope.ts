import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The backup a piece of asynchronous work belongs to. runBackup runs inside a scope, and every
 * callback, timer, stream event and promise started from there inherits it, so an error that
 * escapes every handler (an unhandled rejection, an uncaught exception) can still be charged to
 * its backup instead of taking the daemon down (see src/daemon/crash-guard.ts).
 */
export interface JobScope {
  mandate: string;
  /** The backup's name, once chosen. */
  backup?: string;
  /** Fails the backup with this error: its streams are destroyed and the run ends as failed. */
  fail(err: Error): void;
}

const storage = new AsyncLocalStorage<JobScope>();

export function runInJobScope<T>(scope: JobScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** The scope of the code running now (or of the promise whose rejection is being reported). */
export function currentJobScope(): JobScope | undefined {
  return storage.getStore();
}
