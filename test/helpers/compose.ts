/**
 * The compose example (examples/compose) against the private test engine: stand-ins for the
 * service images made from the host's binaries, and a docker-compose runner.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { docker, HOST_IMAGE } from '../setup/services.js';

export const EXAMPLE_DIR = fileURLToPath(new URL('../../examples/compose', import.meta.url));
export const COMPOSE_FILE = `${EXAMPLE_DIR}/compose.yaml`;
export const TEST_OVERRIDE = fileURLToPath(new URL('../fixtures/compose/compose.test.yaml', import.meta.url));
const STANDINS = fileURLToPath(new URL('../fixtures/compose/standins', import.meta.url));
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The newest PostgreSQL server on this machine, e.g. /usr/lib/postgresql/15/bin. */
export function postgresBin(): string {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)) : [];
  const best = versions.sort((a, b) => Number(b) - Number(a)).find((v) => existsSync(`/usr/lib/postgresql/${v}/bin/pg_dump`));
  if (best === undefined) throw new Error('the compose test needs PostgreSQL server binaries in /usr/lib/postgresql/<version>/bin');
  return `/usr/lib/postgresql/${best}/bin`;
}

/** Image names the test passes through MARIADB_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE and APP_IMAGE. */
export const STANDIN_IMAGES = {
  MARIADB_IMAGE: 'backer-compose-standin/mariadb:test',
  POSTGRES_IMAGE: 'backer-compose-standin/postgres:test',
  REDIS_IMAGE: 'backer-compose-standin/redis:test',
  APP_IMAGE: 'backer-compose-standin/app:test',
} as const;

/** One stand-in: the host image plus an entrypoint script and image settings, by docker commit. */
async function commitStandin(host: string, tag: string, script: string | null, changes: string[]): Promise<void> {
  const id = await docker(host, ['create', HOST_IMAGE, '/bin/true']);
  try {
    if (script !== null) await docker(host, ['cp', `${STANDINS}/${script}`, `${id}:/standin-entrypoint`]);
    await docker(host, ['commit', ...changes.flatMap((c) => ['--change', c]), id, tag]);
  } finally {
    await docker(host, ['rm', id]);
  }
}

/**
 * Stand-ins for mariadb:11, postgres:16, redis:7 and the app, made from the host's programs
 * (their containers need the host's /usr and /etc, which the test override mounts). They follow
 * the official images where the example relies on them: *_FILE secrets, data paths, sockets.
 */
export async function buildStandins(host: string): Promise<void> {
  await commitStandin(host, STANDIN_IMAGES.MARIADB_IMAGE, 'mariadb.sh', [`ENV PATH=${PATH}`, 'ENTRYPOINT ["/standin-entrypoint"]', 'CMD []']);
  await commitStandin(host, STANDIN_IMAGES.POSTGRES_IMAGE, 'postgres.sh', [`ENV PATH=${postgresBin()}:${PATH}`, 'ENTRYPOINT ["/standin-entrypoint"]', 'CMD []']);
  await commitStandin(host, STANDIN_IMAGES.REDIS_IMAGE, null, [`ENV PATH=${PATH}`, 'WORKDIR /data', 'CMD ["redis-server"]']);
  await commitStandin(host, STANDIN_IMAGES.APP_IMAGE, 'app.sh', [`ENV PATH=${PATH}`, 'ENTRYPOINT ["/standin-entrypoint"]', 'CMD []']);
}

export interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs a program with `input` on stdin; resolves with its exit code and output (never rejects on exit codes). */
export async function runCommand(command: string, args: string[], env: Record<string, string>, input: Buffer | string = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** A docker-compose (Debian's v1.29) project of the example plus the test override. */
export class ComposeProject {
  constructor(
    readonly name: string,
    private readonly host: string,
    private readonly envFile: string,
    private readonly env: Record<string, string>,
  ) {}

  async run(args: string[], input: Buffer | string = '', env: Record<string, string> = {}): Promise<Run> {
    const base = ['-p', this.name, '--env-file', this.envFile, '-f', COMPOSE_FILE, '-f', TEST_OVERRIDE];
    return runCommand('docker-compose', [...base, ...args], { ...this.env, ...env, DOCKER_HOST: this.host }, input);
  }

  /** Like run, but rejects unless the exit code is 0. */
  async ok(args: string[], input: Buffer | string = '', env: Record<string, string> = {}): Promise<Buffer> {
    const result = await this.run(args, input, env);
    if (result.code !== 0) throw new Error(`docker-compose ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** The container's name (the mandate of a labelled service is named after it). */
  async containerName(service: string): Promise<string> {
    const id = (await this.ok(['ps', '-q', service])).toString().trim();
    return (await docker(this.host, ['inspect', '--format', '{{.Name}}', id])).replace(/^\//, '');
  }
}

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
