import { formatSize } from '../config/size.js';
import type { MandateAlerts } from '../mandates/alert-keys.js';

/** How many earlier successful backups the median is taken over. */
export const SIZE_HISTORY = 10;

export interface SizeCheck {
  /** Median raw bytes of the earlier backups (up to SIZE_HISTORY); null when there were none. */
  median_bytes: number | null;
  /** Why the size is out of bounds; null when it is not. */
  reason: string | null;
}

/** The median of `values` (the mean of the middle two for an even count); null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const high = sorted[mid] as number;
  return sorted.length % 2 === 1 ? high : ((sorted[mid - 1] as number) + high) / 2;
}

/**
 * Judges the raw size of a successful backup: below `min_size_bytes`, or more than
 * `size_change_percent` away (up or down) from the median of `previous` (the raw sizes of the
 * mandate's earlier successful backups, newest first; only the newest SIZE_HISTORY count).
 */
export function checkSize(rawBytes: number, previous: readonly number[], alerts: Pick<MandateAlerts, 'min_size_bytes' | 'size_change_percent'>): SizeCheck {
  const med = median(previous.slice(0, SIZE_HISTORY));
  const reasons: string[] = [];
  if (alerts.min_size_bytes !== null && rawBytes < alerts.min_size_bytes) {
    reasons.push(`raw size ${formatSize(rawBytes)} is below min_size ${formatSize(alerts.min_size_bytes)}`);
  }
  if (alerts.size_change_percent !== null && med !== null) {
    const change = med === 0 ? (rawBytes === 0 ? 0 : Infinity) : (Math.abs(rawBytes - med) / med) * 100;
    if (change > alerts.size_change_percent) {
      const shown = Number.isFinite(change) ? `${Math.round(change)}%` : 'from zero';
      const way = rawBytes < med ? 'shrank' : 'grew';
      reasons.push(`raw size ${formatSize(rawBytes)} ${way} ${shown} from the median ${formatSize(med)} of the last ${Math.min(previous.length, SIZE_HISTORY)} backups (size_change_alert ${alerts.size_change_percent}%)`);
    }
  }
  return { median_bytes: med, reason: reasons.length === 0 ? null : reasons.join('; ') };
}
