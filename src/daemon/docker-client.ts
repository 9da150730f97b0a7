import { createRequire } from 'node:module';
import type Docker from 'dockerode';

const require = createRequire(import.meta.url);

/**
 * dockerode's lib/session.js (BuildKit sessions of `buildImage` with `version: "2"`, which Backer
 * never calls) loads gRPC and protobufjs at require time: ~110 modules, ~55 ms of CPU and ~7 MiB.
 * It is put in the require cache as a stub that fails such a build, before dockerode loads. Only
 * when it is there and not loaded yet: another layout of dockerode just loads as it is.
 */
function skipBuildKitSession(): void {
  let path: string;
  try {
    path = require.resolve('dockerode/lib/session.js');
  } catch {
    return;
  }
  if (require.cache[path] !== undefined) return;
  const stub = new (require('node:module') as typeof import('node:module')).Module(path);
  stub.filename = path;
  stub.loaded = true;
  stub.exports = (_docker: unknown, _auth: unknown, handler: (err: Error) => void): void => {
    handler(new Error('BuildKit sessions (buildImage with version "2") are not available in Backer'));
  };
  require.cache[path] = stub;
}

/**
 * Docker's client, loaded at first use: dockerode brings docker-modem, ssh2 (and, without the stub
 * above, gRPC and protobufjs), which a daemon or `backup --once` with Docker off never needs.
 * dockerode is CommonJS, so a synchronous require keeps the callers synchronous.
 */
export function dockerClient(socketPath: string): Docker {
  skipBuildKitSession();
  const DockerClass = require('dockerode') as typeof Docker;
  return new DockerClass({ socketPath });
}

/**
 * A client that loads dockerode only when a method or property is first used: for the pipelines
 * when Docker is off (host sources never touch it, but their services carry a client).
 */
export function lazyDockerClient(socketPath: string): Docker {
  let client: Docker | null = null;
  const real = (): Docker => (client ??= dockerClient(socketPath));
  return new Proxy({} as Docker, {
    get(_target, property) {
      const value: unknown = Reflect.get(real(), property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(real()) : value;
    },
    has: (_target, property) => Reflect.has(real(), property),
  });
}
