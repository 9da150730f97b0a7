import { BackerError } from '../errors.js';

export function cancelledError(component: string, reason?: unknown): BackerError {
  return new BackerError('JOB_CANCELLED', 'the job was cancelled', { component, cause: reason, permanent: true });
}

export function throwIfAborted(signal: AbortSignal, component: string): void {
  if (signal.aborted) throw cancelledError(component, signal.reason);
}
