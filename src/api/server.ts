import { chmod, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { BackerError, describeError } from '../errors.js';
import type { ApiConfig } from './config.js';
import type { ApiApp } from './route.js';
import type { UiHandler } from './ui.js';

/** Whether something accepts connections on the socket (a live daemon, not a stale file). */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** sun_path holds 108 bytes with the terminating NUL. */
const SOCKET_PATH_MAX = 107;

function listen(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Binds the socket so that it is never reachable with the umask's mode. bind(2) creates the socket
 * file with 0777 & ~umask, and a chmod afterwards leaves a window in which any local user can
 * connect (and a connection, once accepted, outlives the chmod). So the socket is bound inside a
 * fresh directory of mode 0700 next to its final path (same filesystem), set to 0660 there, where
 * no other user can reach it, and only then renamed into place: from its first appearance at
 * `socketPath` it has mode 0660. A bound socket keeps working after rename(2). Chosen over setting
 * process.umask around listen(): the umask is process-wide, so file and directory creations that
 * libuv's thread pool runs at that moment would get it too, and it throws in worker threads.
 */
async function listenPrivately(server: Server, socketPath: string): Promise<void> {
  // Not join(dir, '.'): it normalises the dot away, and mkdtemp would create a sibling of dir.
  const privateDir = await mkdtemp(`${dirname(socketPath)}/.`);
  const bound = join(privateDir, 's');
  try {
    if (Buffer.byteLength(bound) > SOCKET_PATH_MAX) {
      throw new BackerError('CONFIG_INVALID', `api.socket ${socketPath}: the directory path is too long for a unix socket (Backer binds ${bound}, at most ${SOCKET_PATH_MAX} bytes); choose a shorter path`, {
        component: 'api',
        details: { socket: socketPath },
        permanent: true,
      });
    }
    await chmod(privateDir, 0o700); // mkdtemp already uses 0700; explicit, whatever the platform
    await listen(server, bound);
    await chmod(bound, 0o660);
    await rename(bound, socketPath);
  } catch (err) {
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  } finally {
    await rm(privateDir, { recursive: true, force: true });
  }
}

export interface ApiServer {
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Serves the API on a unix socket (mode 0660: the owner and its group may use the CLI). */
export function createApiServer(app: Pick<ApiApp, 'fetch'>, socketPath: string): ApiServer {
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  let started = false;
  return {
    async start() {
      await mkdir(dirname(socketPath), { recursive: true });
      if (await answers(socketPath)) {
        throw new BackerError('CONFIG_INVALID', `another Backer daemon is already listening on ${socketPath}`, {
          component: 'api',
          details: { socket: socketPath },
        });
      }
      // A socket file left by a crashed daemon would make rename replace it anyway; removing it
      // first keeps a stale file from being mistaken for a live daemon by a client in between.
      await rm(socketPath, { force: true });
      await listenPrivately(server, socketPath);
      started = true;
    },
    async close() {
      if (!started) return;
      started = false;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(socketPath, { force: true });
    },
  };
}

export interface TcpApiServer extends ApiServer {
  /** `http://HOST:PORT` or `https://…` once started (the real port when the config said 0). */
  url(): string;
}

function listenTcp(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function readPem(path: string, key: 'cert_file' | 'key_file'): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new BackerError('CONFIG_INVALID', `api.tls.${key}: cannot read ${path}: ${describeError(err)}`, { component: 'api', details: { path }, cause: err, permanent: true });
  }
}

/**
 * The same app over TCP (`api.listen`), HTTPS with `api.tls`. Its requests are marked `transport:
 * tcp`: they need a bearer token except on public routes (src/api/auth.ts).
 */
export function createTcpApiServer(app: Pick<ApiApp, 'fetch'>, config: Pick<ApiConfig, 'listen' | 'tls'> & { listen: NonNullable<ApiConfig['listen']> }, ui?: UiHandler): TcpApiServer {
  let server: Server | undefined;
  const { host, port } = config.listen;
  // The web UI's static files (src/api/ui.ts) come first; every API path goes to the API app.
  const fetch = (request: Request, env: object): Response | Promise<Response> => ui?.handle(request) ?? app.fetch(request, { ...env, transport: 'tcp' });
  return {
    async start() {
      if (config.tls === null) server = createAdaptorServer({ fetch }) as Server;
      else {
        const serverOptions = { cert: await readPem(config.tls.cert_file, 'cert_file'), key: await readPem(config.tls.key_file, 'key_file') };
        server = createAdaptorServer({ fetch, createServer: createHttpsServer, serverOptions }) as Server;
      }
      try {
        await listenTcp(server, host, port);
      } catch (err) {
        server = undefined;
        throw new BackerError('CONFIG_INVALID', `api.listen ${host}:${port}: cannot listen: ${describeError(err)}`, { component: 'api', details: { host, port }, cause: err, permanent: true });
      }
    },
    url() {
      const address = server?.address() as AddressInfo | null | undefined;
      const where = address?.family === 'IPv6' ? `[${address.address}]` : (address?.address ?? host);
      return `${config.tls === null ? 'http' : 'https'}://${where}:${address?.port ?? port}`;
    },
    async close() {
      const current = server;
      server = undefined;
      if (current === undefined) return;
      current.closeAllConnections();
      await new Promise<void>((resolve) => current.close(() => resolve()));
    },
  };
}
