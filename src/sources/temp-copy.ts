import type { Readable, Transform } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from '../logging/logger.js';
import { execCapture, execStream, lastLines } from './docker-exec.js';

/**
 * Runs a command that creates a temporary copy under umask 077, so that the copy (a whole
 * database) is readable only by the container's backup user, not by everyone who can read /tmp.
 * The arguments stay separate argv entries: nothing is interpolated by the shell.
 */
export function withPrivateUmask(cmd: string[]): string[] {
  return ['sh', '-c', 'umask 077 && exec "$@"', 'sh', ...cmd];
}

export interface TempFileStreamOptions {
  docker: Docker;
  container: string;
  /** The file to stream; it and `extra` are removed afterwards. */
  file: string;
  /** Side files to remove too (`-wal`, `-shm`, `-journal`). */
  extra?: string[];
  signal: AbortSignal;
  logger: Logger;
  component: string;
  /** Builds the verifying transform; its `result()` resolves after `cat` exited AND the files were removed. */
  verifier(result: () => Promise<{ exitCode: number; stderr: string }>): Transform;
}

/**
 * Removes temp files in the container with a second exec. Never throws and never uses the job's
 * signal: it must also run after a cancellation. A failure is logged with the path to clean up.
 */
export function tempFileRemover(docker: Docker, container: string, files: string[], logger: Logger, component: string): () => Promise<void> {
  let removal: Promise<void> | undefined;
  return () => {
    removal ??= execCapture(docker, container, { cmd: ['rm', '-f', '--', ...files] }, component).then(
      ({ exitCode, stderr }) => {
        if (exitCode !== 0) logger.warn({ container, files, exit_code: exitCode, stderr: lastLines(stderr) }, 'could not remove the temporary copy in the container');
      },
      (err: unknown) => logger.warn({ container, files, err: err instanceof Error ? err.message : String(err) }, 'could not remove the temporary copy in the container'),
    );
    return removal;
  };
}

/**
 * Streams a temporary file out of the container with `cat` and ALWAYS removes it afterwards:
 * before the stream ends on success (so a committed backup never leaves the copy behind), and
 * as soon as the stream closes after an error or a cancellation.
 */
export async function streamTempFile(options: TempFileStreamOptions): Promise<Readable> {
  const { docker, container, file, signal, logger, component } = options;
  const remove = tempFileRemover(docker, container, [file, ...(options.extra ?? [])], logger, component);
  const cat = await execStream(docker, container, { cmd: ['cat', '--', file], signal }, component).catch(async (err: unknown) => {
    await remove();
    throw err;
  });
  const stream = cat.stdout.pipe(
    options.verifier(async () => {
      const result = await cat.result();
      await remove();
      return result;
    }),
  );
  cat.stdout.on('error', (err) => stream.destroy(err));
  stream.on('close', () => {
    if (!cat.stdout.destroyed) cat.stdout.destroy();
    void remove();
  });
  return stream;
}
