/**
 * The crash guard: an error that escapes every handler is logged with its stack and fails only
 * the backup it belongs to; the process goes on. In-process for the handler's logic, and in a
 * real Node process (real `unhandledRejection` / `uncaughtException` events) running real
 * backups through runBackup into a local target.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { handleEscapedError } from '../src/daemon/crash-guard.js';
import { capturingLogger } from './helpers/logs.js';
import { runInJobScope } from '../src/pipeline/job-scope.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));


describe('crash guard, in-process', () => {
  it('charges an escaped error to the backup whose scope it ran in, with its stack in the log', () => {
    const { logger, lines } = capturingLogger();
    const failed: Error[] = [];
    const boom = new Error('boom in a stream callback');
    runInJobScope({ mandate: 'shop', backup: 'b-1', fail: (err) => failed.push(err) }, () => handleEscapedError(logger, 'uncaughtException', boom));
    expect(failed).toEqual([boom]);
    const [entry] = lines();
    expect(entry).toMatchObject({ level: 50, kind: 'uncaughtException', mandate: 'shop', backup: 'b-1', err: 'boom in a stream callback' });
    expect(entry?.stack).toMatch(/Error: boom in a stream callback\n\s+at /);
    expect(entry?.msg).toBe('unexpected error in a backup: the backup fails, the daemon goes on');
  });

  it('logs an error outside any backup (and a thrown non-error) without failing anything', () => {
    const { logger, lines } = capturingLogger();
    handleEscapedError(logger, 'unhandledRejection', 'a string reason');
    const [entry] = lines();
    expect(entry).toMatchObject({ kind: 'unhandledRejection', err: 'non-error value thrown: a string reason' });
    expect(entry?.msg).toBe('unexpected error outside any backup: the daemon goes on');
    expect(entry?.mandate).toBeUndefined();
  });
});

/**
 * Runs in its own Node process: two backups at once into a real local target; the source of
 * "broken" lets a rejection escape while it streams (the class of bug of issue 6). The guard must
 * fail "broken" only, "healthy" must be stored completely, and the process must stay up.
 */
function childScript(targetDir: string): string {
  return `
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { installCrashGuard } from '${SRC}daemon/crash-guard.ts';
import { createLogger, SecretRegistry } from '${SRC}logging/logger.ts';
import { runBackup } from '${SRC}pipeline/run-backup.ts';
import { createLocalTarget } from '${SRC}targets/local.ts';

const logger = createLogger({ level: 'info', secrets: new SecretRegistry(), destination: process.stdout });
installCrashGuard(logger);
const chunks = (mandate) => {
  let n = 0;
  return new Readable({
    read() {
      n++;
      if (mandate === 'broken' && n === 3) {
        // A promise rejected with nothing attached, inside the backup's async context.
        void Promise.reject(new Error('escaped from the source'));
        setTimeout(() => this.push(randomBytes(64 * 1024)), 200);
        return;
      }
      setTimeout(() => this.push(n > 40 ? null : randomBytes(64 * 1024)), 5);
    },
  });
};
const source = {
  async dump(_o, _t, ctx) {
    const stream = chunks(ctx.mandate);
    return { stream, mime: 'application/octet-stream', extension: '.bin', info: () => ({ type: 'stub', container: null }) };
  },
};
const services = {
  sources: new Map([['stub', source]]),
  targets: new Map([['disk', createLocalTarget({ name: 'disk', type: 'local', default: false, path: ${JSON.stringify(targetDir)} })]]),
  middleware: new Map(),
  docker: undefined,
  logger,
  registerSecret: () => undefined,
};
const mandate = (name) => ({ name, origin: 'config', source: { type: 'stub', container: null, options: {} }, interval: '0 0 29 2 *', targets: ['disk'], middleware: [], retention: 5, name_pattern: '<MANDATE>' });
const results = await Promise.all(['broken', 'healthy'].map((m) => runBackup(mandate(m), services, new AbortController().signal)));
setTimeout(() => {
  process.stdout.write('RESULTS ' + JSON.stringify(results.map((r) => ({ name: r.name, status: r.status, error: r.error }))) + '\\n');
}, 100);
`;
}

describe('crash guard, in a real process', () => {
  it('an escaped rejection fails only its backup; the other one completes and the process lives on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bk-guard-'));
    const script = join(dir, 'child.mts');
    await writeFile(script, childScript(join(dir, 'target')));
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, out).toBe(0);

    const results = JSON.parse(/^RESULTS (.*)$/m.exec(out)?.[1] ?? 'null') as { name: string; status: string; error: { code: string; message: string } | null }[];
    expect(results).toEqual([
      { name: 'broken', status: 'failed', error: { code: 'INTERNAL', message: 'an unexpected error ended this backup: escaped from the source' } },
      { name: 'healthy', status: 'succeeded', error: null },
    ]);
    const logged = out.split('\n').filter((l) => l.includes('unexpected error in a backup'));
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0] ?? '{}')).toMatchObject({ kind: 'unhandledRejection', mandate: 'broken', backup: 'broken' });
    expect(logged[0]).toMatch(/Error: escaped from the source\\n\s+at /);
    // Nothing of the failed backup on the target: no artifact, manifest or temp file (the empty
    // directory stays: directories are never pruned, see local.ts remove()).
    const files = (await readdir(join(dir, 'target'), { recursive: true, withFileTypes: true })).filter((e) => !e.isDirectory());
    expect(files.map((e) => join(e.parentPath, e.name).slice(join(dir, 'target').length + 1)).sort()).toEqual(['healthy/healthy.bin', 'healthy/healthy.manifest.json']);
  }, 60_000);
});
