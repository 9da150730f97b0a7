import { EventEmitter } from 'node:events';
import type { AnyJob, JobKind } from '../queue/types.js';
import type { MandateHealth, MandateStatus } from '../status/types.js';

/** Bytes of the artifact read or written so far, and the expected total when known (for ETA). */
export interface JobProgress {
  bytes: number;
  total: number | null;
}

/**
 * Typed job events on one in-process bus: logs, state, metrics, notifications and the API's
 * event stream all listen here instead of reaching into the queue.
 */
export type BackerEvent =
  | { type: 'job.queued' | 'job.started' | 'job.succeeded' | 'job.failed' | 'job.cancelled' | 'job.interrupted' | 'job.retrying'; job: AnyJob }
  | { type: 'job.progress'; job_id: string; kind: JobKind; mandate: string; progress: JobProgress }
  /** A mandate's status changed (src/status): `previous` is null the first time it is computed. */
  | { type: 'mandate.status'; mandate: string; status: MandateStatus; previous: MandateStatus | null; health: MandateHealth }
  /**
   * A successful backup whose raw size is suspicious: below `min_size`, or more than
   * `size_change_alert` percent away from the median of the mandate's last 10 raw sizes.
   */
  | { type: 'mandate.size_anomaly'; mandate: string; job_id: string; raw_bytes: number; median_bytes: number | null; min_bytes: number | null; reason: string }
  /** Discovery's set of mandates (or their settings, or the skipped ones) changed. */
  | { type: 'mandates.changed'; mandates: string[]; skipped: string[] };

export interface EventBus {
  emit(event: BackerEvent): void;
  /** Returns the function that removes the listener. */
  on(listener: (event: BackerEvent) => void): () => void;
  listeners(): number;
}

export function createEventBus(): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    emit: (event) => emitter.emit('event', event),
    on(listener) {
      emitter.on('event', listener);
      return () => emitter.off('event', listener);
    },
    listeners: () => emitter.listenerCount('event'),
  };
}
