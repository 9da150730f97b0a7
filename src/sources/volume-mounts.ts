import { BackerError } from '../errors.js';

/** One entry of a container's `Mounts` (docker inspect). */
export interface ContainerMount {
  Type: string;
  Name?: string | undefined;
  Source: string;
  Destination: string;
  RW: boolean;
}

export interface MountPlan {
  /** Mounts the helper gets, each at `/backup<Destination>`. */
  mounts: ContainerMount[];
  /** Archived paths (absolute in the container); the archive holds them as `./<path>`. */
  members: string[];
  /** Mounts left out by the default selection, with the reason. */
  skipped: { destination: string; reason: string }[];
}

const COMPONENT = 'source volume';

/** Kernel pseudo filesystems: never archived by default, whatever the mount mode. */
const PSEUDO_DIRS = ['/proc', '/sys', '/dev'];
/** Read-only binds of these (host source or container destination) are system mounts, not data. */
const SYSTEM_DIRS = ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/boot', '/run', '/var/run', '/var/lib/docker'];

export function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/** Why the default selection leaves a mount out, or null when it holds data to back up. */
function skipReason(m: ContainerMount): string | null {
  if (m.Type !== 'volume' && m.Type !== 'bind') return `${m.Type} mount`;
  if (m.Type === 'volume') return null;
  const ends = [m.Source, m.Destination];
  if (ends.some((p) => p.endsWith('/docker.sock'))) return 'the Docker socket';
  if (m.Source === '/') return 'the host root filesystem';
  if (ends.some((p) => PSEUDO_DIRS.some((d) => within(p, d)))) return 'a kernel pseudo filesystem';
  if (!m.RW && ends.some((p) => SYSTEM_DIRS.some((d) => within(p, d)))) return 'a read-only system mount';
  return null;
}

/** Drops paths that lie inside another listed path: tar would archive them twice. */
function outermost(paths: string[]): string[] {
  return paths.filter((p) => !paths.some((q) => q !== p && within(p, q)));
}

function defaultPlan(container: string, mounts: ContainerMount[]): MountPlan {
  const selected: ContainerMount[] = [];
  const skipped: MountPlan['skipped'] = [];
  for (const m of mounts) {
    const reason = skipReason(m);
    if (reason === null) selected.push(m);
    else skipped.push({ destination: m.Destination, reason });
  }
  if (selected.length === 0) {
    const why = skipped.map((s) => `${s.destination} (${s.reason})`).join(', ');
    throw new BackerError('DUMP_FAILED', `container ${container} has no volume or bind mount to back up${why ? `; skipped: ${why}` : ''}; name paths with backer.volume.paths`, {
      component: COMPONENT,
      details: { container },
      permanent: true,
    });
  }
  return { mounts: selected, members: outermost(selected.map((m) => m.Destination)), skipped };
}

/** The mount that holds `path` (the deepest), or why there is none a helper can use. */
export function owningMount(mounts: ContainerMount[], path: string): ContainerMount | string {
  const owner = mounts.filter((m) => within(path, m.Destination)).sort((a, b) => b.Destination.length - a.Destination.length)[0];
  if (owner === undefined) return 'is not on a volume or bind mount';
  if (owner.Type !== 'volume' && owner.Type !== 'bind') return `is on a ${owner.Type} mount, which a helper container cannot read`;
  return owner;
}

/**
 * Decides what the helper mounts and archives. Default (paths null): every volume (named or
 * anonymous) and every bind mount except binds of the Docker socket, of the host's `/`, of
 * /proc, /sys or /dev, and read-only binds of system directories (SYSTEM_DIRS); tmpfs and other
 * mount types are never included. With paths: each must lie on a volume or bind mount; mounts
 * nested below a path are included too.
 */
export function planMounts(container: string, mounts: ContainerMount[], paths: string[] | null): MountPlan {
  if (paths === null) return defaultPlan(container, mounts);
  const used = new Set<ContainerMount>();
  const readable = (m: ContainerMount): boolean => m.Type === 'volume' || m.Type === 'bind';
  const known = mounts.map((m) => m.Destination).join(', ') || 'none';
  for (const path of paths) {
    const owner = owningMount(mounts, path);
    if (typeof owner === 'string') {
      throw new BackerError('LABEL_INVALID', `container ${container} label backer.volume.paths: ${path} ${owner} (mounts: ${known})`, {
        component: COMPONENT,
        details: { container, path },
        permanent: true,
      });
    }
    used.add(owner);
    for (const m of mounts) if (m !== owner && readable(m) && within(m.Destination, path)) used.add(m);
  }
  return { mounts: [...used], members: outermost(paths), skipped: [] };
}
