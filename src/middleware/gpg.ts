import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { BackerError } from '../errors.js';
import { cancelledError } from '../util/abort.js';
import { childEnv } from '../util/child-env.js';
import { failedStream } from '../util/failed-stream.js';
import { spawnDuplex } from '../util/spawn-duplex.js';
import { lowerChildPriority } from '../util/work-priority.js';
import { defineMiddleware } from '../plugins/define.js';
import { gpgMiddlewareSchema, type GpgMiddlewareConfig } from './gpg.schema.js';
import type { Middleware } from './types.js';

const COMPONENT = 'middleware gpg';
/** No questions (there is no one to answer them), no terminal, keys trusted because the config names them. */
const BASE_ARGS = ['--batch', '--yes', '--no-tty', '--quiet', '--trust-model', 'always'];
/** The agent keeps no passphrase: a secret stays in its memory only while a run needs it. */
const AGENT_CONF = 'default-cache-ttl 0\nmax-cache-ttl 0\n';
const STDERR_LIMIT = 8 * 1024;

/** How one gpg run is started: its arguments and what goes first on its stdin. */
interface Invocation {
  args: string[];
  /**
   * A passphrase line for `--passphrase-fd 0`: gpg reads exactly one line from stdin, byte by
   * byte, at startup, then the data. Neither argv, nor the environment, nor a file sees it.
   */
  secret?: Buffer;
}

interface GpgHome {
  dir: string;
  /** Fingerprints of the imported public keys (public-key mode). */
  recipients: string[];
}

/** Homes that still exist, removed when the process exits in case close() was never called. */
const liveHomes = new Set<string>();
let exitHookInstalled = false;

function track(dir: string): void {
  liveHomes.add(dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A gpg-agent whose home disappears terminates by itself.
  process.once('exit', () => {
    for (const home of liveHomes) rmSync(home, { recursive: true, force: true });
  });
}

/**
 * Encrypts with the real `gpg` program, so the artifact decrypts with a plain `gpg --decrypt`:
 * symmetric (AES256) with `passphrase`, or to the public keys in `public_keys` and
 * `public_key_files`. Decoding in public-key mode needs `private_key` or `private_key_file`.
 *
 * Each instance gets a private GNUPGHOME (mode 0700 under the OS temp directory), created at
 * first use; public keys are imported there at once, the private key only at the first decode.
 * close() stops its gpg-agent and removes it; a process exit removes it too. gpg compresses
 * nothing (`--compress-algo none`): compression is the job of a compression middleware before it.
 */
export function createGpgMiddleware(config: GpgMiddlewareConfig): Middleware {
  let home: Promise<GpgHome> | undefined;
  let privateKey: Promise<void> | undefined;
  const symmetric = config.passphrase !== undefined;

  const prepare = (): Promise<GpgHome> => {
    home ??= createHome(config).catch((err: unknown) => {
      home = undefined; // a fixed key file works on the next run
      throw err;
    });
    return home;
  };
  const prepareDecode = async (): Promise<GpgHome> => {
    const h = await prepare();
    privateKey ??= importPrivateKey(h.dir, config).catch((err: unknown) => {
      privateKey = undefined;
      throw err;
    });
    await privateKey;
    return h;
  };
  const passphraseLine = (passphrase: string): Buffer => Buffer.from(`${passphrase}\n`);

  return {
    name: config.name,
    type: 'gpg',
    extension: '.gpg',
    mime: 'application/pgp-encrypted',
    encode: (signal) =>
      lazyGpg(async () => {
        const h = await prepare();
        const base = [...BASE_ARGS, '--homedir', h.dir, '--compress-algo', 'none', '--output', '-'];
        if (config.passphrase !== undefined) {
          return {
            args: [...base, '--pinentry-mode', 'loopback', '--passphrase-fd', '0', '--no-symkey-cache', '--symmetric', '--cipher-algo', 'AES256'],
            secret: passphraseLine(config.passphrase),
          };
        }
        return { args: [...base, '--encrypt', ...h.recipients.flatMap((fpr) => ['--recipient', fpr])] };
      }, signal),
    cannotDecode: () =>
      !symmetric && config.private_key === undefined && config.private_key_file === undefined
        ? `gpg middleware ${config.name} has public keys but no private_key or private_key_file (it can only encrypt)`
        : null,
    decode: (signal) => {
      if (!symmetric && config.private_key === undefined && config.private_key_file === undefined) {
        return failedStream(
          new BackerError('MIDDLEWARE_FAILED', `gpg middleware ${config.name} cannot decode: it has public keys but no private_key or private_key_file (it can only encrypt)`, {
            component: COMPONENT,
            details: { middleware: config.name },
            permanent: true,
          }),
        );
      }
      return lazyGpg(async () => {
        const h = symmetric ? await prepare() : await prepareDecode();
        const passphrase = config.passphrase ?? config.private_key_passphrase;
        const base = [...BASE_ARGS, '--homedir', h.dir, '--pinentry-mode', 'loopback'];
        if (passphrase === undefined) return { args: [...base, '--decrypt'] };
        return { args: [...base, '--passphrase-fd', '0', '--no-symkey-cache', '--decrypt'], secret: passphraseLine(passphrase) };
      }, signal);
    },
    close: async () => {
      const pending = home;
      home = undefined;
      privateKey = undefined;
      const h = await pending?.catch(() => undefined);
      if (h !== undefined) await removeHome(h.dir);
    },
  };
}

async function createHome(config: GpgMiddlewareConfig): Promise<GpgHome> {
  const dir = await mkdtemp(join(tmpdir(), 'backer-gpg-'));
  track(dir);
  try {
    await chmod(dir, 0o700);
    await writeFile(join(dir, 'gpg-agent.conf'), AGENT_CONF, { mode: 0o600 });
    const recipients: string[] = [];
    for (const [index, key] of config.public_keys.entries()) {
      recipients.push(...(await importPublicKey(dir, config.name, `public_keys[${index}]`, Buffer.from(key))));
    }
    for (const path of config.public_key_files) {
      recipients.push(...(await importPublicKey(dir, config.name, path, await readKeyFile(path, config.name, 'public_key_files'))));
    }
    return { dir, recipients };
  } catch (err) {
    await removeHome(dir);
    throw err;
  }
}

/** Imports one config entry and returns the fingerprints of its keys, each of which must be able to encrypt. */
async function importPublicKey(dir: string, middleware: string, origin: string, key: Buffer): Promise<string[]> {
  const listing = await runGpg(dir, ['--with-colons', '--import-options', 'import-show', '--import'], key, `import the public key of ${origin}`, middleware);
  const fingerprints: string[] = [];
  let pendingPrimary: string[] | undefined;
  for (const line of listing.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === 'pub') {
      pendingPrimary = fields;
    } else if (fields[0] === 'fpr' && pendingPrimary !== undefined) {
      const fpr = fields[9] ?? '';
      // Field 12 holds the key's overall capabilities: a capital E means it can encrypt now.
      if (!(pendingPrimary[11] ?? '').includes('E')) {
        throw new BackerError('MIDDLEWARE_FAILED', `gpg middleware ${middleware}: key ${fpr} of ${origin} cannot encrypt (expired, revoked or without an encryption subkey)`, {
          component: COMPONENT,
          details: { middleware, key: origin, fingerprint: fpr },
          permanent: true,
        });
      }
      fingerprints.push(fpr);
      pendingPrimary = undefined;
    }
  }
  if (fingerprints.length === 0) {
    throw new BackerError('MIDDLEWARE_FAILED', `gpg middleware ${middleware}: ${origin} holds no OpenPGP public key`, {
      component: COMPONENT,
      details: { middleware, key: origin },
      permanent: true,
    });
  }
  return fingerprints;
}

async function importPrivateKey(dir: string, config: GpgMiddlewareConfig): Promise<void> {
  const origin = config.private_key_file ?? 'private_key';
  const key = config.private_key !== undefined ? Buffer.from(config.private_key) : await readKeyFile(origin, config.name, 'private_key_file');
  // A protected key is imported as it is: the agent stores it still protected, the passphrase unlocks it at decode.
  await runGpg(dir, ['--import'], key, `import the private key of ${origin}`, config.name);
}

async function readKeyFile(path: string, middleware: string, option: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new BackerError('MIDDLEWARE_FAILED', `gpg middleware ${middleware}: cannot read ${option} entry ${path}: ${(err as Error).message}`, {
      component: COMPONENT,
      details: { middleware, path },
      cause: err,
    });
  }
}

/** The pid of the home's running gpg-agent, or null when none runs (never starts one). */
function agentPid(dir: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('gpg-connect-agent', ['--homedir', dir, '--no-autostart', 'getinfo pid', '/bye'], { stdio: ['ignore', 'pipe', 'ignore'], env: childEnv() });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(null));
    child.on('close', () => {
      const pid = Number(/^D (\d+)$/m.exec(out)?.[1]);
      resolve(Number.isSafeInteger(pid) && pid > 0 ? pid : null);
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the home's agent and waits until it is gone (gpgconf --kill only asks it to exit, which a
 * busy machine may take a moment to do; after 5 s it is killed), then removes the home.
 */
async function removeHome(dir: string): Promise<void> {
  const pid = await agentPid(dir);
  await new Promise<void>((resolve) => {
    const child = spawn('gpgconf', ['--homedir', dir, '--kill', 'gpg-agent'], { stdio: 'ignore', env: childEnv() });
    // Without gpgconf there is nothing more to ask: the pid below is still waited for.
    child.on('error', () => resolve());
    child.on('close', () => resolve());
  });
  for (let i = 0; pid !== null && alive(pid) && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
  if (pid !== null && alive(pid)) process.kill(pid, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
  liveHomes.delete(dir);
}

/** Runs one short gpg command (key import) with `input` on stdin; resolves to its stdout. */
function runGpg(dir: string, args: string[], input: Buffer, action: string, middleware: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('gpg', [...BASE_ARGS, '--homedir', dir, ...args], { env: childEnv() });
    // At the added work's priority, like the stream's gpg: the gpg-agent it starts inherits it.
    lowerChildPriority(child.pid, 'gpg');
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-STDERR_LIMIT);
    });
    child.stdin.on('error', () => undefined); // the exit code tells
    child.on('error', (err: NodeJS.ErrnoException) => {
      const missing = err.code === 'ENOENT';
      reject(
        new BackerError(missing ? 'TOOL_MISSING' : 'MIDDLEWARE_FAILED', missing ? 'gpg is not installed (not found in PATH)' : `cannot run gpg: ${err.message}`, {
          component: COMPONENT,
          details: { command: 'gpg', middleware },
          cause: err,
          permanent: missing,
        }),
      );
    });
    child.on('close', (code) => {
      if (code === 0) {
        resolve(Buffer.concat(out).toString('utf8'));
        return;
      }
      const detail = stderr.trim();
      reject(
        new BackerError('MIDDLEWARE_FAILED', `gpg middleware ${middleware}: cannot ${action}: gpg exited with code ${String(code)}${detail === '' ? '' : `: ${detail}`}`, {
          component: COMPONENT,
          details: { command: 'gpg', middleware, exit_code: code, stderr: detail },
          permanent: true,
        }),
      );
    });
    child.stdin.end(input);
  });
}

/**
 * A Duplex in front of a gpg process that can only start once the home is ready: writes and
 * reads wait (Node's construct()) until then. Failures, backpressure and abort behave as with
 * spawnDuplex, and the stream closes only after gpg has been reaped.
 */
function lazyGpg(prepare: () => Promise<Invocation>, signal: AbortSignal): Duplex {
  let inner: Duplex | undefined;
  const onAbort = (): void => {
    // Before gpg runs, construct() fails the stream itself: destroying it now would make a pipeline
    // built in this tick fail with ERR_STREAM_UNABLE_TO_PIPE instead (Node 22+).
    if (inner !== undefined) outer.destroy(cancelledError(COMPONENT, signal.reason));
  };
  const outer: Duplex = new Duplex({
    construct(callback) {
      prepare().then(
        (invocation) => {
          // Aborted or destroyed while the home was being prepared: start nothing.
          if (outer.destroyed) {
            callback();
            return;
          }
          if (signal.aborted) {
            callback(cancelledError(COMPONENT, signal.reason));
            return;
          }
          const gpg = spawnDuplex({ command: 'gpg', args: invocation.args, signal, component: COMPONENT });
          inner = gpg;
          gpg.on('data', (chunk: Buffer) => {
            if (!outer.push(chunk)) gpg.pause();
          });
          gpg.on('end', () => outer.push(null));
          gpg.on('error', (err) => outer.destroy(err));
          if (invocation.secret !== undefined) gpg.write(invocation.secret);
          callback();
        },
        (err: unknown) => callback(err as Error),
      );
    },
    write(chunk: Buffer, _encoding, callback) {
      const gpg = inner;
      if (gpg === undefined) return; // destroyed during construct: never called
      if (gpg.write(chunk)) callback();
      else gpg.once('drain', () => callback());
    },
    final(callback) {
      const gpg = inner;
      if (gpg === undefined) return;
      // 'end' of the readable side carries the verdict; finishing the input only means gpg took it.
      gpg.once('finish', () => callback());
      gpg.end();
    },
    read() {
      inner?.resume();
    },
    destroy(err, callback) {
      signal.removeEventListener('abort', onAbort);
      const gpg = inner;
      if (gpg === undefined || gpg.closed) {
        callback(err);
        return;
      }
      gpg.once('close', () => callback(err));
      gpg.destroy();
    },
  });
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return outer;
}

/** The `gpg` middleware plugin: its options schema (gpg.schema.ts), the programs it needs, its driver. */
export const gpgPlugin = defineMiddleware({
  type: 'gpg',
  options: gpgMiddlewareSchema,
  tools: ['gpg'],
  create: createGpgMiddleware,
});
