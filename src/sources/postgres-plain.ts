import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';
import { BackerError } from '../errors.js';
import { COMPONENT, conninfoDbname, sqlIdent } from './postgres-conn.js';

/** Databases every cluster has: the dump `\connect`s to them instead of `CREATE DATABASE` (see dumpParts). */
export const PREEXISTING: ReadonlySet<string> = new Set(['postgres', 'template1']);

/** How a plain dump (the parts Backer wrote: globals, then each database) is applied. */
export interface PlainRestore {
  /** The dump starts with `pg_dumpall --globals-only` (manifest `globals`). */
  globals: boolean;
  /** The dumped databases, in the dump's order (manifest `databases`). */
  databases: readonly string[];
  /** `--database FROM:TO`: only these, under the new name. Empty: every database under its own name. */
  rename: ReadonlyMap<string, string>;
  /** The destination server's major version (`DROP DATABASE … WITH (FORCE)` from 13). */
  serverMajor: number;
}

const START = { db: '-- PostgreSQL database dump', globals: '-- PostgreSQL database cluster dump' };
const END = { db: '-- PostgreSQL database dump complete', globals: '-- PostgreSQL database cluster dump complete' };
const DATABASE_STATEMENT = /^(CREATE|ALTER|COMMENT ON|GRANT|REVOKE|SECURITY LABEL)\b/;

/** A `\connect` line psql reads as one argument, whatever the name holds. */
export function connectLine(db: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(db) ? `\\connect ${db}` : `\\connect -reuse-previous=on "${conninfoDbname(db).replace(/"/g, '""')}"`;
}

/** Ends every session of `db` and drops it; the caller is connected elsewhere. */
export function dropDatabase(db: string, serverMajor: number): string[] {
  if (serverMajor >= 13) return [`DROP DATABASE IF EXISTS ${sqlIdent(db)} WITH (FORCE);`];
  const literal = `'${db.replace(/'/g, "''")}'`;
  return [
    `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = ${literal} AND pid <> pg_catalog.pg_backend_pid();`,
    `DROP DATABASE IF EXISTS ${sqlIdent(db)};`,
  ];
}

/**
 * What goes before a database's part: the database is dropped and made again (by the part's own
 * `CREATE DATABASE`, or here for the databases that every cluster has), so that objects created
 * after the backup are gone. template1 cannot be dropped: its part is applied over what is there.
 */
function databaseHeader(from: string, to: string, serverMajor: number): string[] {
  if (to === 'template1') return [connectLine('template1')];
  const lines = [connectLine('template1'), ...dropDatabase(to, serverMajor)];
  if (PREEXISTING.has(from)) lines.push(`CREATE DATABASE ${sqlIdent(to)} TEMPLATE template0;`, connectLine(to));
  return lines;
}

/** Roles that exist already (the superuser, at least) are kept; the next `ALTER ROLE` line resets their attributes. */
function roleLine(line: string): string {
  const m = /^CREATE ROLE (.+);$/.exec(line);
  return m === null ? line : `DO $backer$BEGIN CREATE ROLE ${m[1] ?? ''}; EXCEPTION WHEN duplicate_object THEN NULL; END$backer$;`;
}

/** The part's own references to the database's name (`CREATE DATABASE shop`, `\connect shop`, grants …), renamed. */
function renameLine(line: string, from: string, to: string): string {
  if (line.startsWith('\\connect ')) return connectLine(to);
  if (!DATABASE_STATEMENT.test(line)) return line;
  const names = [sqlIdent(from), ...(/^[a-z_][a-z0-9_$]*$/.test(from) ? [from] : [])];
  for (const name of names) {
    const at = line.indexOf(` DATABASE ${name}`);
    const after = line[at + ` DATABASE ${name}`.length];
    if (at >= 0 && (after === ' ' || after === ';' || after === undefined)) {
      return `${line.slice(0, at)} DATABASE ${sqlIdent(to)}${line.slice(at + ` DATABASE ${name}`.length)}`;
    }
  }
  return line;
}

interface Part {
  kind: 'globals' | 'db';
  from: string;
  to: string;
  skip: boolean;
}

function fail(message: string): BackerError {
  return new BackerError('RESTORE_FAILED', `the plain dump ${message}`, { component: COMPONENT });
}

/** The line-by-line state of one plain dump: which part it is in, and whether in COPY data. */
class PlainRewriter {
  private readonly parts: Part[];
  private index = -1;
  private between = true;
  private inCopy = false;

  constructor(private readonly plan: PlainRestore) {
    const { rename } = plan;
    this.parts = [
      ...(plan.globals ? [{ kind: 'globals' as const, from: '', to: '', skip: false }] : []),
      ...plan.databases.map((db) => ({ kind: 'db' as const, from: db, to: rename.get(db) ?? db, skip: rename.size > 0 && !rename.has(db) })),
    ];
  }

  line(text: string, out: string[]): void {
    const part = this.parts[this.index];
    if (this.inCopy) {
      if (text === '\\.') this.inCopy = false;
      if (part?.skip !== true) out.push(text);
    } else if (this.between) {
      this.betweenParts(text, part, out);
    } else {
      if (text === END.db || text === END.globals) this.between = true;
      else if (text.startsWith('COPY ') && text.endsWith(' FROM stdin;')) this.inCopy = true;
      if (part === undefined || part.skip) return;
      if (part.kind === 'globals') out.push(roleLine(text));
      else out.push(part.from === part.to ? text : renameLine(text, part.from, part.to));
    }
  }

  private betweenParts(text: string, part: Part | undefined, out: string[]): void {
    if (text === START.db || text === START.globals) {
      this.index += 1;
      this.between = false;
      const next = this.parts[this.index];
      if (next === undefined || (next.kind === 'globals') !== (text === START.globals)) throw fail(`holds more or other parts than its manifest names (at part ${this.index + 1})`);
      if (!next.skip) out.push(text, ...(next.kind === 'db' ? databaseHeader(next.from, next.to, this.plan.serverMajor) : []));
      return;
    }
    // Backer's own `\connect postgres` before a part without CREATE DATABASE: the header connects.
    if (text.startsWith('\\connect ')) return;
    if (part?.skip !== true) out.push(text);
  }

  /** null when the dump ended after its last part's trailer; otherwise why it is incomplete. */
  incomplete(): string | null {
    if (this.index === this.parts.length - 1 && this.between) return null;
    return `ends before the completion trailer of part ${Math.max(this.index, 0) + 1} of ${this.parts.length}: it is incomplete`;
  }
}

/**
 * Rewrites a plain dump line by line while it streams to psql: the globals' `CREATE ROLE` made
 * idempotent, each database dropped and recreated before its part, `--database FROM:TO` renames,
 * the other databases left out. COPY data passes untouched. The stream errors when the dump's
 * parts do not match the manifest or it ends before the last part's completion trailer.
 */
export function plainRestoreTransform(plan: PlainRestore): Transform {
  const rewriter = new PlainRewriter(plan);
  const decoder = new StringDecoder('utf8');
  let rest = '';
  const lines = (text: string, final: boolean): string => {
    const all = rest + text;
    if (final && all === '') return '';
    const split = all.split('\n');
    rest = final ? '' : (split.pop() ?? '');
    const out: string[] = [];
    for (const l of split) rewriter.line(l, out);
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      try {
        callback(null, lines(decoder.write(chunk), false));
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback: TransformCallback) {
      try {
        const tail = lines(decoder.end(), true);
        const incomplete = rewriter.incomplete();
        callback(incomplete === null ? null : fail(incomplete), tail);
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}
