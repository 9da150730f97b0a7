/** Used when Backer itself runs without PATH (e.g. started by a bare `env -i`). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The whole environment of a program Backer starts on the host (tar, gzip-like filters, gpg, age):
 * PATH, to find the program, plus what the caller passes for that one program (its own secret).
 * Never a copy of Backer's environment: it holds cloud credentials (AWS_*), the keys of every
 * middleware and whatever `${VAR}` the config expands, which no single tool needs, and a child's
 * environment is readable through /proc/<pid>/environ by its user and by root. No HOME, LANG or
 * LC_*: the tools run in the C locale, which they need neither for data nor for errors.
 */
export function childEnv(extra: Readonly<Record<string, string>> = {}, parent: Readonly<Record<string, string | undefined>> = process.env): Record<string, string> {
  const path = parent['PATH'];
  return { PATH: path === undefined || path === '' ? DEFAULT_PATH : path, ...extra };
}
