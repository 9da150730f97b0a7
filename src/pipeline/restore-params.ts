import { z } from 'zod';
import { BackerError } from '../errors.js';
import type { RestoreDestination } from '../sources/types.js';

/** The request of a restore, as the API takes it (`POST /v1/restores`) and the CLI sends it. */
export const restoreParamsSchema = z
  .object({
    mandate: z.string().min(1),
    /** A backup name or uuid, or `latest` (the newest regular backup). */
    backup: z.string().min(1).default('latest'),
    /** Read the backup from this target. Default: the first of the mandate's targets that has it. */
    target: z.string().min(1).optional(),
    /** `original`, `new:NAME`, `container:NAME` or `file:PATH`. */
    to: z.string().min(1).default('original'),
    /** `FROM:TO`: restore database FROM under the name TO. */
    databases: z.array(z.string().regex(/^[^:]+:[^:]+$/, 'expected FROM:TO')).default([]),
    dry_run: z.boolean().default(false),
    /** Stream the whole artifact through the hash checks before anything is applied. */
    verify_first: z.boolean().default(true),
    /** Back up the original's current state first (tagged `safety`). */
    safety_backup: z.boolean().default(true),
    /** Restore the safety backup automatically when the restore fails. */
    rollback: z.boolean().default(true),
    /** Confirms replacing data: needed with safety_backup false into the original, and for a non-empty directory. */
    yes: z.boolean().default(false),
  })
  .strict();

export type RestoreParams = z.output<typeof restoreParamsSchema>;

const refused = (message: string): BackerError => new BackerError('RESTORE_REFUSED', message, { component: 'restore', permanent: true });

export interface ParsedDestination {
  destination: RestoreDestination;
  /** Name of the scratch container to create first (`new:NAME` of a container source). */
  scratch: string | null;
}

/** `--to` → where the restore writes, for a mandate of `type` whose container is `container`. */
export function parseDestination(to: string, type: string, container: string | null): ParsedDestination {
  const [kind = '', ...rest] = to.split(':');
  const value = rest.join(':');
  if (kind === 'original') {
    if (container === null) throw refused(`${type} backups have no original container: restore them with --to file:PATH`);
    return { destination: { kind: 'container', container, original: true, scratch: false }, scratch: null };
  }
  if (value === '') throw refused(`--to ${to}: expected original, new:NAME, container:NAME or file:PATH`);
  if (kind === 'file') {
    if (!value.startsWith('/')) throw refused(`--to file:${value}: the path must be absolute`);
    return { destination: { kind: 'file', path: value }, scratch: null };
  }
  if (container === null) throw refused(`${type} backups restore into a host directory: --to file:PATH`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(value)) throw refused(`--to ${to}: "${value}" is not a valid container or volume name`);
  if (kind === 'container') return { destination: { kind: 'container', container: value, original: value === container, scratch: false }, scratch: null };
  if (kind === 'new' && type === 'volume') return { destination: { kind: 'volume', volume: value }, scratch: null };
  if (kind === 'new') return { destination: { kind: 'container', container: value, original: false, scratch: true }, scratch: value };
  throw refused(`--to ${to}: expected original, new:NAME, container:NAME or file:PATH`);
}

/** `FROM:TO` pairs → map; refused on a source without databases. */
export function parseDatabaseMap(pairs: readonly string[], type: string, hasDatabases: boolean): Map<string, string> {
  if (pairs.length > 0 && !hasDatabases) throw refused(`--database: ${type} backups hold no named databases`);
  const map = new Map<string, string>();
  for (const pair of pairs) {
    const [from = '', to = ''] = pair.split(':');
    if (map.has(from)) throw refused(`--database ${from}: given twice`);
    map.set(from, to);
  }
  return map;
}
