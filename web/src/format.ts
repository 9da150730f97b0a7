// Display helpers: sizes, ages and statuses as text (never by colour alone).
import type { MandateStatus } from './api';

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 === 0 ? '' : `${m % 60}m`}`;
  return `${Math.floor(h / 24)}d${h % 24 === 0 ? '' : `${h % 24}h`}`;
}

export function when(iso: string | null | undefined, now: number): string {
  if (iso === null || iso === undefined) return '—';
  const diff = Date.parse(iso) - now;
  return diff >= 0 ? `in ${duration(diff)}` : `${duration(-diff)} ago`;
}

export const STATUS_TEXT: Record<MandateStatus, string> = {
  ok: 'ok',
  stale: 'stale',
  failing: 'failing',
  never_succeeded: 'never succeeded',
  skipped: 'skipped',
};

/** Badge classes per status; the text says the same thing. */
export const STATUS_CLASS: Record<MandateStatus, string> = {
  ok: 'bg-emerald-100 text-emerald-900 dark:bg-emerald-900 dark:text-emerald-100',
  stale: 'bg-amber-100 text-amber-900 dark:bg-amber-900 dark:text-amber-100',
  failing: 'bg-red-100 text-red-900 dark:bg-red-900 dark:text-red-100',
  never_succeeded: 'bg-slate-200 text-slate-900 dark:bg-slate-700 dark:text-slate-100',
  skipped: 'bg-violet-100 text-violet-900 dark:bg-violet-900 dark:text-violet-100',
};
