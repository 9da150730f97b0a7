/**
 * Orders strings by UTF-16 code unit, as `<` does: the same on every machine, whatever its locale,
 * and SQLite's BINARY order for the names and ISO timestamps Backer sorts. The daemon uses no
 * `localeCompare` (eslint.config.js): it follows the process's locale, and its first call loads
 * ICU's collation data into the process (~3 MiB of RSS, bench/README.md "Memory").
 */
export const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
