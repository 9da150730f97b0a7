/**
 * The dump under test in bench/memory.ts: a generated file (`files` mandates, no Docker) or a
 * MariaDB database in a container of a private dockerd (`mysql` mandates: Docker exec, the
 * multiplexed exec stream and its demultiplexing in the daemon, as users run it).
 */
import { join } from 'node:path';
import { buildHostImage, startDockerd, type DockerService } from '../../test/setup/services.js';
import { dropBench, generate, startDatabase } from './mariadb-data.js';

const CONTAINER = 'bench-mem-db';

export interface MemorySource {
  readonly kind: 'files' | 'mariadb';
  /** The config's `docker:` line. */
  readonly dockerLine: string;
  /** The mandate body (after `type:`), indented for a mandate of `mandates:`. */
  readonly mandateBody: string;
  /** Makes the dump about `sizeMb` MiB (replacing the previous size's). */
  prepare(sizeMb: number): Promise<void>;
  close(): Promise<void>;
}

/** A `files` mandate over `dir`/files, filled by `writeDump(file, sizeMb)`. */
export function filesSource(dir: string, writeDump: (dir: string, sizeMb: number) => Promise<void>): MemorySource {
  return {
    kind: 'files',
    dockerLine: 'docker: { enabled: false }',
    mandateBody: `    type: files\n    files: { path: ${join(dir, 'files')} }\n`,
    prepare: (sizeMb) => writeDump(dir, sizeMb),
    close: async () => {},
  };
}

/** A `mysql` mandate over a MariaDB container whose database `bench` dumps to about the asked size. */
export async function mariadbSource(): Promise<MemorySource> {
  const dockerd: DockerService = await startDockerd();
  try {
    await buildHostImage(dockerd.host);
    await startDatabase(dockerd.host, CONTAINER);
  } catch (err) {
    await dockerd.stop();
    throw err;
  }
  return {
    kind: 'mariadb',
    dockerLine: `docker: { socket_path: ${dockerd.socketPath} }`,
    mandateBody: `    type: mysql\n    container: ${CONTAINER}\n    mysql: { password: "Env:MYSQL_ROOT_PASSWORD", database: bench }\n`,
    prepare: async (sizeMb) => {
      process.stderr.write(`generating ${sizeMb} MiB of MariaDB rows…\n`);
      await dropBench(dockerd.host, CONTAINER);
      await generate(dockerd.host, CONTAINER, sizeMb);
    },
    close: () => dockerd.stop(),
  };
}
