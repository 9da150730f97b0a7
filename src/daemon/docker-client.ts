import { createRequire, Module } from 'node:module';
import type Docker from 'dockerode';

const require = createRequire(import.meta.url);

/**
 * Puts `exports(path)` in the require cache as the module `specifier` (resolved from `from`'s
 * directory, as the package that requires it would), before that package loads. Only when it is
 * there and not loaded yet: another layout of the packages just loads as it is.
 */
function preempt(specifier: string, from: string, exports: (path: string) => unknown): void {
  let path: string;
  try {
    path = createRequire(require.resolve(from)).resolve(specifier);
  } catch {
    return;
  }
  if (require.cache[path] !== undefined) return;
  const stub = new Module(path);
  stub.filename = path;
  stub.loaded = true;
  stub.exports = exports(path);
  require.cache[path] = stub;
}

/** The real module at `path` in place of its stub, loaded now. */
function loadReal(path: string): unknown {
  delete require.cache[path];
  return require(path);
}

/**
 * Two modules of dockerode's that Backer (a unix socket, no image builds) never uses, and that
 * load heavy packages at require time:
 * - dockerode's lib/session.js (BuildKit sessions of `buildImage` with `version: "2"`) loads gRPC
 *   and protobufjs: ~110 modules, ~55 ms of CPU and ~7 MiB. Its stub fails such a build.
 * - docker-modem's lib/ssh.js (DOCKER_HOST=ssh://…) loads ssh2: ~33 modules, ~4 MiB of an idle daemon's RSS.
 *   Its stub loads the real one at its first call, so ssh would still work.
 */
function skipUnusedModules(): void {
  preempt('dockerode/lib/session.js', 'dockerode', () => (_docker: unknown, _auth: unknown, handler: (err: Error) => void): void => {
    handler(new Error('BuildKit sessions (buildImage with version "2") are not available in Backer'));
  });
  preempt('docker-modem/lib/ssh.js', 'dockerode', (path) => {
    let real: ((options: unknown) => unknown) | undefined;
    return (options: unknown): unknown => (real ??= loadReal(path) as (options: unknown) => unknown)(options);
  });
}

/**
 * Docker's client, loaded at first use: dockerode brings docker-modem (and, without the stubs
 * above, ssh2, gRPC and protobufjs), which a daemon or `backup --once` with Docker off never needs.
 * dockerode is CommonJS, so a synchronous require keeps the callers synchronous.
 */
export function dockerClient(socketPath: string): Docker {
  skipUnusedModules();
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
