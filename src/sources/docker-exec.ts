import { pipeline, Transform, type Duplex, type Readable, type TransformCallback } from 'node:stream';
import type Docker from 'dockerode';
import { BackerError } from '../errors.js';

/** The last lines of a tool's output, on one line, for error messages. */
export function lastLines(text: string, n = 3): string {
  return text
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}

/** Collects at most `limit` bytes of the end of a stream, for error messages and trailers. */
export class TailBuffer {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    // Copies at most `limit` bytes per chunk (a dump's every chunk passes here), and keeps no
    // view of the chunk itself, so a large chunk is not held alive by its tail.
    if (chunk.length >= this.limit) {
      this.buf = Buffer.from(chunk.subarray(chunk.length - this.limit));
      return;
    }
    const keep = Math.min(this.buf.length, this.limit - chunk.length);
    this.buf = Buffer.concat([this.buf.subarray(this.buf.length - keep), chunk]);
  }
  toString(): string {
    return this.buf.toString('utf8');
  }
  bytes(): Buffer {
    return this.buf;
  }
}

const HEADER_BYTES = 8;

/**
 * Demultiplexes Docker's attach protocol (8-byte frame headers) with real backpressure:
 * stdout frames are pushed downstream, stderr frames go to a bounded tail buffer.
 * (docker-modem's demuxStream ignores backpressure, which would buffer a whole dump in memory
 * behind a slow target.) A frame's payload goes on as views of the chunks it arrives in, never
 * copied or joined: stdout is a byte stream, its frame boundaries mean nothing downstream. Only a
 * header split between two chunks is copied (8 bytes).
 */
export class DemuxStream extends Transform {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  /** Payload bytes of the current frame still to come, and the frame's stream (1 stdout, 2 stderr). */
  private remaining = 0;
  private type = 0;
  constructor(private readonly stderr: TailBuffer) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining === 0) {
        pos = this.readHeader(chunk, pos);
        continue;
      }
      const end = Math.min(chunk.length, pos + this.remaining);
      this.remaining -= end - pos;
      if (this.type === 2) this.stderr.push(chunk.subarray(pos, end));
      else if (this.type === 1) this.push(pos === 0 && end === chunk.length ? chunk : chunk.subarray(pos, end));
      pos = end;
    }
    callback();
  }

  /** Takes what `chunk` holds of the next header from `pos`; returns the position after it. */
  private readHeader(chunk: Buffer, pos: number): number {
    const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - pos);
    chunk.copy(this.header, this.headerFill, pos, pos + take);
    this.headerFill += take;
    if (this.headerFill === HEADER_BYTES) {
      this.headerFill = 0;
      this.type = this.header.readUInt8(0);
      this.remaining = this.header.readUInt32BE(4);
    }
    return pos + take;
  }
}

export interface ExecOptions {
  cmd: string[];
  /** `NAME=value` entries: the only way credentials reach the tool (never argv). */
  env?: string[];
  user?: string;
  signal?: AbortSignal;
  /**
   * Streamed into the process's stdin, which is closed when it ends (restores: `mariadb < dump`).
   * Default: no stdin. An error of this stream ends the exec.
   */
  stdin?: Readable;
}

export interface ExecHandle {
  /** The tool's stdout. */
  stdout: Readable;
  /** Resolves once the process has exited (call after stdout ended). */
  result(): Promise<{ exitCode: number; stderr: string }>;
}

export interface ContainerInfo {
  name: string;
  image: string;
  env: Record<string, string>;
  user: string;
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

export function envToRecord(env: string[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env ?? []) {
    const i = entry.indexOf('=');
    if (i > 0) out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}

/** Inspects a container and requires it to be running. */
export async function runningContainer(docker: Docker, name: string, component: string): Promise<ContainerInfo> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await docker.getContainer(name).inspect();
  } catch (err) {
    if (statusCode(err) === 404) {
      throw new BackerError('CONTAINER_NOT_FOUND', `container ${name} does not exist`, { component, details: { container: name }, cause: err });
    }
    throw new BackerError('DOCKER_UNAVAILABLE', `cannot inspect container ${name}`, { component, details: { container: name }, cause: err });
  }
  if (!info.State.Running) {
    throw new BackerError('CONTAINER_NOT_RUNNING', `container ${name} is not running (${info.State.Status})`, {
      component,
      details: { container: name },
      // Retried (queue.retries) only while Docker restarts it: a stopped container stays stopped.
      permanent: info.State.Status !== 'restarting',
    });
  }
  return { name, image: info.Config.Image, env: envToRecord(info.Config.Env), user: info.Config.User };
}

export async function execStream(docker: Docker, container: string, options: ExecOptions, component: string): Promise<ExecHandle> {
  const stderr = new TailBuffer(8192);
  let exec: Docker.Exec;
  let raw: NodeJS.ReadWriteStream;
  try {
    exec = await docker.getContainer(container).exec({
      Cmd: options.cmd,
      Env: options.env ?? [],
      User: options.user ?? '',
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: options.stdin !== undefined,
      Tty: false,
    });
    raw = (await exec.start({ hijack: true, stdin: options.stdin !== undefined, abortSignal: options.signal })) as NodeJS.ReadWriteStream;
  } catch (err) {
    const code = statusCode(err);
    if (code === 404) throw new BackerError('CONTAINER_NOT_FOUND', `container ${container} does not exist`, { component, details: { container }, cause: err });
    if (code === 409 || code === 500) {
      throw new BackerError('CONTAINER_NOT_RUNNING', `container ${container} is not running`, { component, details: { container }, cause: err });
    }
    throw new BackerError('DOCKER_UNAVAILABLE', `cannot run ${options.cmd[0] ?? ''} in container ${container}`, { component, details: { container }, cause: err });
  }
  const demux = new DemuxStream(stderr);
  const connection = raw as unknown as Duplex;
  const stdout = options.stdin === undefined ? pipeline(connection, demux, () => undefined) : withStdin(exec, connection, demux, options.stdin);
  // Aborting the request does not close a connection that was already hijacked: close it here.
  const abort = (): void => {
    connection.destroy(new BackerError('JOB_CANCELLED', 'cancelled', { component }));
  };
  options.signal?.addEventListener('abort', abort, { once: true });
  stdout.once('close', () => options.signal?.removeEventListener('abort', abort));
  return {
    stdout,
    async result() {
      // The stream can end a moment before the engine records the exit code.
      for (let i = 0; i < 100; i++) {
        const state = await exec.inspect().catch((err: unknown) => {
          throw new BackerError('DUMP_FAILED', `${options.cmd[0] ?? ''} in container ${container} vanished before its exit code was known (container removed?)`, {
            component,
            details: { container },
            cause: err,
          });
        });
        if (!state.Running && state.ExitCode !== null) return { exitCode: state.ExitCode, stderr: stderr.toString() };
        await new Promise((r) => setTimeout(r, 50));
      }
      return { exitCode: -1, stderr: stderr.toString() };
    },
  };
}

/**
 * An exec with stdin: the engine keeps the output open while stdin is open, so a command that
 * exits early (a SQL error) with our input stuck behind backpressure would wait forever. The
 * exit is watched instead: once the process is gone, its remaining output is taken and the
 * connection closed, whatever the input still holds.
 */
function withStdin(exec: Docker.Exec, connection: Duplex, demux: DemuxStream, input: Readable): Readable {
  connection.pipe(demux);
  connection.on('error', (err) => demux.destroy(err));
  // A connection the engine closed after the process's end: the output is complete.
  connection.on('close', () => {
    if (!demux.writableEnded && !demux.destroyed) demux.end();
  });
  demux.on('close', () => {
    if (!connection.destroyed) connection.destroy();
  });
  feedStdin(input, connection, demux);
  const timer = setInterval(() => {
    exec.inspect().then(
      (state) => {
        // Not started yet (no exit code) or still running: nothing to do.
        if (state.Running || state.ExitCode === null) return;
        clearInterval(timer);
        // A moment for the last output frames, then the connection is closed.
        setTimeout(() => {
          connection.unpipe(demux);
          if (!demux.writableEnded && !demux.destroyed) demux.end();
          connection.destroy();
        }, 300);
      },
      () => undefined,
    );
  }, 300);
  demux.once('close', () => clearInterval(timer));
  demux.once('end', () => clearInterval(timer));
  return demux;
}

/**
 * Writes `input` into the hijacked connection with backpressure and half-closes it at the end:
 * the engine then closes the process's stdin, so `mariadb < dump` sees its end of file. An error
 * of the input (a decode that failed, a hash mismatch) ends the exec's output with that error.
 */
function feedStdin(input: Readable, connection: Duplex, output: Readable): void {
  if (input.destroyed && !input.readableEnded) {
    // It failed (or was closed) while the exec started: no 'error' comes any more, and piping it
    // would leave the process waiting on an open stdin forever.
    output.destroy(input.errored ?? new Error('the input was closed before it ended'));
    connection.destroy();
    return;
  }
  input.on('error', (err) => {
    output.destroy(err);
    connection.destroy();
  });
  input.pipe(connection, { end: true });
  output.on('close', () => {
    if (!input.readableEnded) input.unpipe(connection);
  });
}

/** Runs a short command to completion and returns its output (for probes and File: secrets). */
export async function execCapture(
  docker: Docker,
  container: string,
  options: ExecOptions,
  component: string,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const handle = await execStream(docker, container, options, component);
  const chunks: Buffer[] = [];
  for await (const chunk of handle.stdout) chunks.push(chunk as Buffer);
  const { exitCode, stderr } = await handle.result();
  return { exitCode, stdout: Buffer.concat(chunks).toString('utf8'), stderr };
}
