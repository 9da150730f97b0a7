import { chmod, mkdir, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import type { Hono } from 'hono';
import { BackerError } from '../errors.js';

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

export interface ApiServer {
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Serves the API on a unix socket (mode 0660: the owner and its group may use the CLI). */
export function createApiServer(app: Hono, socketPath: string): ApiServer {
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
      // A socket file left by a crashed daemon would make listen fail with EADDRINUSE.
      await rm(socketPath, { force: true });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
      await chmod(socketPath, 0o660);
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
