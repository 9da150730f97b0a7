import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { BackerError } from '../errors.js';
import { TailBuffer } from './docker-exec.js';
import { labelError } from './options.js';
import type { Dump, DumpContext, OptionOrigin, SourceDefinition } from './types.js';

export interface FilesOptions {
  /** Absolute host directory to archive. Required. */
  path: string;
}

const COMPONENT = 'source files';

function parse(raw: Record<string, string>, origin: OptionOrigin): FilesOptions {
  for (const key of Object.keys(raw)) {
    if (key !== 'path') throw labelError(origin, key, 'unknown files option; known: path');
  }
  const path = raw.path;
  if (path === undefined || path === '') throw labelError(origin, 'path', 'expected the directory to back up');
  if (!isAbsolute(path)) throw labelError(origin, 'path', `expected an absolute path, got "${path}"`);
  return { path };
}

/** Archives a host directory as a tar stream (static mandates only: there is no container). */
async function dump(options: FilesOptions, _target: { container: string | null }, context: DumpContext): Promise<Dump> {
  const info = await stat(options.path).catch((err: unknown) => {
    throw new BackerError('DUMP_FAILED', `cannot read ${options.path}`, { component: COMPONENT, details: { path: options.path }, cause: err });
  });
  if (!info.isDirectory()) throw new BackerError('DUMP_FAILED', `${options.path} is not a directory`, { component: COMPONENT, details: { path: options.path } });

  const child = spawn('tar', ['-C', options.path, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'], signal: context.signal });
  const stderr = new TailBuffer(4096);
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  const exited = new Promise<number>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (code) => resolve(code ?? -1));
  });
  const verify = new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      void exited.then((code) =>
        callback(
          code === 0
            ? null
            : new BackerError('DUMP_FAILED', `tar of ${options.path} exited with code ${code}: ${stderr.toString().trim()}`, {
                component: COMPONENT,
                details: { path: options.path, exit_code: code },
              }),
        ),
      );
    },
  });
  child.stdout.on('error', (err) => verify.destroy(err));
  verify.on('close', () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  child.stdout.pipe(verify);
  return {
    stream: verify,
    mime: 'application/x-tar',
    extension: '.tar',
    info: () => ({ type: 'files', container: null, image: null, databases: [], paths: [options.path] }),
  };
}

export const filesSource: SourceDefinition<FilesOptions> = { type: 'files', needsContainer: false, parse, dump };
