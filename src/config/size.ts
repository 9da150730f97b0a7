/**
 * One way to write a size, in labels and in backer.yml alike: a number (decimals allowed) and an
 * optional unit. `B` or none is bytes; `k`/`kB`, `M`/`MB`, `G`/`GB`, `T`/`TB` are powers of 1000;
 * `KiB`, `MiB`, `GiB`, `TiB` (also `Ki`, `Mi` …) powers of 1024. Units are case-insensitive
 * except that `m`/`M` both mean mega (nothing is measured in milli-bytes). Code reads sizes as
 * whole bytes (numbers).
 */

const UNIT_BYTES: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

/** The problem every refused size reads as. */
export function sizeProblem(text: unknown): string {
  const shown = typeof text === 'string' ? JSON.stringify(text) : String(text);
  return `expected a size like 500k, 10MiB, 2GB or 1048576 (bytes), got ${shown}`;
}

/**
 * Whole bytes of `text` (`10MiB` → 10485760, `1.5k` → 1500), or undefined when it is no size:
 * empty, negative, an unknown unit, or too large to be exact in a number. Fractions of a byte are
 * rounded down.
 */
export function sizeBytes(text: string): number | undefined {
  const match = SIZE_RE.exec(text);
  if (match === null) return undefined;
  const unit = UNIT_BYTES[(match[2] ?? '').toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** `10485760` → `10 MiB`: for messages (binary units, up to one decimal). */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = unit === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${shown} ${units[unit] ?? 'B'}`;
}
