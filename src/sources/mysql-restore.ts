import type { Readable } from 'node:stream';
import { BackerError } from '../errors.js';
import { openContainerRun } from './container-run.js';
import { clientCommand, COMPONENT, openSession, query, type Credentials, type MysqlSession } from './mysql-client.js';
import { CREATE_DATABASE, CURRENT_DATABASE, quote, SqlLineFilter, SYSTEM_DATABASES, unquote, USE_DATABASE } from './mysql-lines.js';
import { dumpedDatabases } from './mysql-stats.js';
import type { DumpContext, RestorePlan, RestoreRequest, SourceInfo } from './types.js';

const DATABASE_NAME = /^[A-Za-z0-9_$-]+$/;

function refused(message: string, details: Record<string, unknown> = {}): BackerError {
  return new BackerError('RESTORE_REFUSED', message, { component: COMPONENT, details, permanent: true });
}

export function destinationOf(request: RestoreRequest): string {
  const destination = request.destination;
  if (destination.kind !== 'container') throw refused(`a mysql backup restores into a container, not a ${destination.kind}`);
  return destination.container;
}

/**
 * The databases to load, as FROM → TO pairs: every user database of the dump under its own name,
 * or exactly the `--database FROM:TO` ones. null: every user database of a dump whose list the
 * manifest does not record (version 1 manifests of `*` backups).
 */
function selection(request: RestoreRequest): Array<[string, string]> | null {
  const dumped = dumpedDatabases(request.manifest);
  if (request.databases.size === 0) return dumped === null ? null : dumped.map((d) => [d, d]);
  const unknown = dumped === null ? [] : [...request.databases.keys()].filter((d) => !dumped.includes(d));
  if (unknown.length > 0) {
    throw refused(`--database names ${unknown.join(', ')}, which the backup does not hold (it holds ${dumped?.join(', ') || 'no database'})`, { databases: unknown });
  }
  for (const [from, to] of request.databases) {
    if (SYSTEM_DATABASES.has(from) || SYSTEM_DATABASES.has(to)) throw refused(`--database ${from}:${to}: the system databases (${[...SYSTEM_DATABASES].join(', ')}) are never restored`);
    if (!DATABASE_NAME.test(to)) throw refused(`--database ${from}:${to}: "${to}" is not a valid database name`);
  }
  return [...request.databases];
}

/** The one database of a backup that names exactly one (its dump may have no USE lines: tables mode). */
function singleDatabase(manifest: SourceInfo): string | null {
  const [only, ...rest] = manifest.databases;
  return only !== undefined && only !== '*' && rest.length === 0 ? only : null;
}

interface Version {
  major: number;
  minor: number;
  flavor: 'MariaDB' | 'MySQL';
}

function parseServerVersion(text: unknown): Version | null {
  if (typeof text !== 'string') return null;
  const m = /^(\d+)\.(\d+)/.exec(text.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]), flavor: /mariadb/i.test(text) ? 'MariaDB' : 'MySQL' } : null;
}

const show = (v: Version): string => `${v.flavor} ${v.major}.${v.minor}`;

/**
 * Refuses a server older (major.minor) than the dumped one. MariaDB and MySQL numbers are not
 * comparable (MariaDB 10.11 vs MySQL 8.0): a dump from the other one is only noted in the plan.
 */
function checkVersion(dumped: unknown, running: string, container: string): string[] {
  const from = parseServerVersion(dumped);
  const to = parseServerVersion(running);
  if (from === null) return ['note: the backup does not record its server version'];
  if (to === null) return [`note: cannot read the server version of container ${container} ("${running}")`];
  if (from.flavor !== to.flavor) return [`note: the dump comes from ${show(from)}, container ${container} runs ${show(to)}`];
  if (to.major < from.major || (to.major === from.major && to.minor < from.minor)) {
    throw refused(`container ${container} runs ${show(to)}, older than the server the backup was dumped from (${show(from)}): restore into ${from.major}.${from.minor} or newer`, {
      container,
      server_version: running,
      dumped_version: dumped,
    });
  }
  return [];
}

export async function planMysqlRestore(credentials: Credentials, request: RestoreRequest, context: DumpContext): Promise<RestorePlan> {
  const container = destinationOf(request);
  const pairs = selection(request);
  const run = await openContainerRun(context, container, COMPONENT);
  const session = await openSession(run, credentials);
  const [[version = ''] = []] = await query(session, 'SELECT VERSION()', 'RESTORE_REFUSED', `${session.tool} (log in as ${session.user})`);
  const steps = checkVersion(request.manifest.server_version, version, container);
  const tables = request.manifest.include_tables;
  const where = `in container ${container}`;
  if (Array.isArray(tables) && tables.length > 0) {
    const db = pairs?.[0]?.[1] ?? singleDatabase(request.manifest) ?? '';
    steps.push(`replace the tables ${tables.join(', ')} of database ${db} ${where} (its other tables stay)`);
  } else if (pairs === null) {
    steps.push(`drop and recreate every user database of the backup ${where}, then load each`);
  } else {
    for (const [from, to] of pairs) {
      steps.push(from === to ? `drop and recreate database ${to} ${where}, then load it` : `drop and recreate database ${to} ${where}, then load database ${from} of the backup into it`);
    }
  }
  if (request.manifest.databases.includes('*')) steps.push(`leave the system databases (${[...SYSTEM_DATABASES].join(', ')}) ${where} as they are`);
  return { steps, stops: [] };
}

/**
 * Streams the dump into the client. Each dumped database is dropped and recreated right where the
 * dump creates it: its `CREATE DATABASE` line becomes `DROP DATABASE IF EXISTS x; CREATE
 * DATABASE …` (on the same line, so the server's "at line N" matches the dump), which needs no
 * list of databases up front, keeps the dump's character set, and renames FROM:TO in the same
 * place (`USE` lines too). Sections of other databases, and of the system ones, are skipped.
 */
export async function runMysqlRestore(credentials: Credentials, request: RestoreRequest, input: Readable, context: DumpContext): Promise<void> {
  const apply = await prepareMysqlRestore(credentials, request, context);
  await apply(input);
}

/**
 * The first half of runMysqlRestore, which writes nothing: the container, the client and the
 * credentials (it runs while the hash-first pass checks the backup). The second half creates the
 * default database and streams `input` into the client.
 */
export async function prepareMysqlRestore(credentials: Credentials, request: RestoreRequest, context: DumpContext): Promise<(input: Readable) => Promise<void>> {
  const container = destinationOf(request);
  const pairs = selection(request);
  const run = await openContainerRun(context, container, COMPONENT);
  const session = await openSession(run, credentials);
  const chosen = pairs === null ? null : new Map(pairs);
  const target = (db: string): string | null => (SYSTEM_DATABASES.has(db) ? null : chosen === null ? db : (chosen.get(db) ?? null));
  const single = singleDatabase(request.manifest);
  const defaultDb = single === null ? undefined : (target(single) ?? undefined);
  return async (input) => {
    if (defaultDb !== undefined) await query(session, `CREATE DATABASE IF NOT EXISTS ${quote(defaultDb)}`, 'RESTORE_FAILED', `${session.tool} (log in as ${session.user})`);
    const seen = new Set<string>();
    const rewriter = restoreRewriter(target, seen).pullFrom(input);
    try {
      await run.feed(clientCommand(session, [], defaultDb), rewriter, { env: session.env });
    } catch (err) {
      rewriter.destroy();
      throw err;
    }
    checkAllLoaded(session, request, seen);
  };
}

/** A `--database FROM` that never showed up in the dump (only knowable afterwards for `*` v1 manifests). */
function checkAllLoaded(session: MysqlSession, request: RestoreRequest, seen: Set<string>): void {
  if (seen.size === 0) return;
  const missing = [...request.databases.keys()].filter((d) => !seen.has(d));
  if (missing.length > 0) {
    throw new BackerError('RESTORE_FAILED', `the backup holds no database ${missing.join(', ')}: nothing was loaded for it in container ${session.run.name}`, {
      component: COMPONENT,
      details: { container: session.run.name, databases: missing },
    });
  }
}

function restoreRewriter(target: (db: string) => string | null, seen: Set<string>): SqlLineFilter {
  let routine = false;
  let skip = false;
  return new SqlLineFilter(
    {
      prefixes: ['-- Current Database: ', 'CREATE DATABASE ', 'USE ', 'DELIMITER '],
      line(text) {
        if (text.startsWith('DELIMITER ')) routine = text.trim() !== 'DELIMITER ;';
        if (routine && !text.startsWith('DELIMITER ')) return skip ? '' : text;
        const section = CURRENT_DATABASE.exec(text)?.[1];
        if (section !== undefined) {
          const db = unquote(section);
          seen.add(db);
          skip = target(db) === null;
        }
        if (skip) return '';
        const create = CREATE_DATABASE.exec(text);
        const use = USE_DATABASE.exec(text);
        const name = create?.[2] ?? use?.[1];
        const to = name === undefined ? null : target(unquote(name));
        if (create && to !== null) return `DROP DATABASE IF EXISTS ${quote(to)}; ${create[1] ?? ''}${quote(to)}${create[3] ?? ''}`;
        if (use && to !== null) return `USE ${quote(to)};${text.slice(use[0].length)}`;
        return text;
      },
      dropping: () => skip,
    },
    'RESTORE_FAILED',
    COMPONENT,
  );
}
