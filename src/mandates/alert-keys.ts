import { durationMs, durationProblem } from '../config/duration.js';
import { sizeBytes, sizeProblem } from '../config/size.js';
import { optionalString, optionIssue } from '../sources/options-schema.js';

/**
 * A mandate's status alerts (src/status): labels `backer.max_age=26h`, `backer.min_size=10MiB`,
 * `backer.size_change_alert=50`, or the same keys in a static mandate.
 */
export const ALERT_KEYS = ['max_age', 'min_size', 'size_change_alert'] as const;

/** What the status monitor and the size check read; null: not set. */
export interface MandateAlerts {
  /** `max_age`: no success for longer than this is `stale`. Default (null): 1.5 × the schedule's interval. */
  max_age_ms: number | null;
  /** `min_size`: a successful backup with fewer raw bytes is a size anomaly. Default (null): no minimum. */
  min_size_bytes: number | null;
  /**
   * `size_change_alert`: a raw size more than this many percent away from the median of the
   * mandate's last 10 successful backups is a size anomaly. Default (null): not checked.
   */
  size_change_percent: number | null;
}

export const NO_ALERTS: MandateAlerts = { max_age_ms: null, min_size_bytes: null, size_change_percent: null };

/** The zod entries of the alert keys, spread into mandateKeysSchema (src/mandates/keys.ts). */
export function alertKeySchemas() {
  return {
    max_age: optionalString().transform((raw, ctx): number | null => {
      if (raw === undefined) return null;
      const ms = durationMs(raw);
      if (ms === undefined) optionIssue(ctx, 'max_age', `${durationProblem(raw)} (no successful backup for longer than this is stale)`);
      return ms ?? null;
    }),
    min_size: optionalString().transform((raw, ctx): number | null => {
      if (raw === undefined) return null;
      const bytes = sizeBytes(raw);
      if (bytes === undefined || bytes < 1) optionIssue(ctx, 'min_size', `${sizeProblem(raw)}, at least 1 byte`);
      return bytes ?? null;
    }),
    size_change_alert: optionalString().transform((raw, ctx): number | null => {
      if (raw === undefined) return null;
      const text = raw.trim().replace(/%$/, '');
      const percent = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
      if (!(percent >= 1 && percent <= 1000)) {
        optionIssue(ctx, 'size_change_alert', `expected a percentage from 1 to 1000 (e.g. 50 or 50%), received ${JSON.stringify(raw)}`);
      }
      return Number.isNaN(percent) ? null : percent;
    }),
  };
}
