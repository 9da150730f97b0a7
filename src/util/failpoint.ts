/**
 * Crash points for the crash-recovery tests: `BACKER_FAILPOINT=<name>` (or `<name>#<n>` for the
 * n-th time the point is reached) makes the process kill itself with SIGKILL right there, as a
 * power cut or an OOM kill would, so that tests can stop a daemon at an exact step of a backup
 * (before the dump, mid-stream, between two manifests, during retention …) and check what the
 * next start recovers. Unset (always, outside those tests), a point costs one property read.
 */
const wanted = parse(process.env.BACKER_FAILPOINT);
const hits = new Map<string, number>();

function parse(value: string | undefined): { name: string; hit: number } | null {
  if (value === undefined || value === '') return null;
  const [name = '', hit = '1'] = value.split('#');
  return { name, hit: Number(hit) };
}

export function failpoint(name: string): void {
  if (wanted === null || wanted.name !== name) return;
  const count = (hits.get(name) ?? 0) + 1;
  hits.set(name, count);
  if (count === wanted.hit) process.kill(process.pid, 'SIGKILL');
}
