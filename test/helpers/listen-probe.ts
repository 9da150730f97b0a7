// Loaded with `node --import` into a daemon process by test/security-socket.test.ts. At the moment a
// server is bound to a unix socket path ('listening' comes right after bind(2), before any
// listen callback of Backer runs), records the mode of the socket file and of its directory.
import { appendFileSync, lstatSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';

const out = process.env['LISTEN_PROBE_OUT'];
const mode = (path: string): number | null => {
  try {
    return lstatSync(path).mode & 0o777;
  } catch {
    return null;
  }
};
type Listen = (this: net.Server, ...args: unknown[]) => net.Server;
// eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the server as `this`
const listen = net.Server.prototype.listen as Listen;
const probed: Listen = function (this: net.Server, ...args: unknown[]) {
  const path = typeof args[0] === 'string' ? args[0] : undefined;
  if (path !== undefined && out !== undefined) {
    this.once('listening', () => {
      appendFileSync(out, `${JSON.stringify({ path, socket: mode(path), dir: mode(dirname(path)) })}\n`);
    });
  }
  return listen.apply(this, args);
};
net.Server.prototype.listen = probed as typeof net.Server.prototype.listen;
