/** The backer.yml of each benchmark scenario: one static mandate over the bench's MariaDB container. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Env {
  dir: string;
  dockerSocket: string;
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string };
  ageRecipient: string;
}

type BaseScenario = 'local' | 's3' | 'zstd-age' | 'fanout';
/** `…-nice0`: the same with queue.nice 0 (the added work at Backer's own priority), for comparison. */
export type Scenario = BaseScenario | `${BaseScenario}-nice0`;

const MANDATE_TARGETS: Record<BaseScenario, string> = { local: 'local', s3: 's3', 'zstd-age': 's3', fanout: '[local, s3]' };
const MANDATE_MIDDLEWARE: Record<BaseScenario, string> = { local: 'gz,cc', s3: 'gz,cc', 'zstd-age': 'zs,ag', fanout: 'gz,cc' };

/** Where a scenario's local target stores its backups. */
export function localTargetDir(env: Env, scenario: Scenario, container: string): string {
  return join(env.dir, `${container}-${scenario}`, 'local');
}

/**
 * Writes the scenario's config (default S3 part size and queue; the ccrypt key comes from
 * BENCH_KEY in Backer's environment) and returns its path and the API socket of its data_dir.
 */
export async function writeConfig(env: Env, scenario: Scenario, container: string): Promise<{ path: string; socket: string }> {
  const base = join(env.dir, `${container}-${scenario}`);
  const nice0 = scenario.endsWith('-nice0');
  const kind = scenario.replace(/-nice0$/, '') as BaseScenario;
  await mkdir(base, { recursive: true });
  const text = `data_dir: ${base}/data
log: { level: warn }
docker: { socket_path: ${env.dockerSocket} }${nice0 ? '\nqueue: { nice: 0 }' : ''}
targets:
  - { name: local, type: local, path: ${localTargetDir(env, scenario, container)} }
  - { name: s3, type: s3, bucket: bench, prefix: ${container}-${scenario}/, endpoint: "${env.s3.endpoint}", force_path_style: true, access_key_id: ${env.s3.accessKeyId}, secret_access_key: ${env.s3.secretAccessKey} }
middleware:
  - { name: gz, type: gzip, level: 6 }
  - { name: cc, type: ccrypt, key: "\${BENCH_KEY}" }
  - { name: zs, type: zstd, threads: 0 }
  - { name: ag, type: age, recipients: ["${env.ageRecipient}"] }
mandates:
  db:
    container: ${container}
    type: mysql
    interval: "0 0 29 2 *"
    target: ${MANDATE_TARGETS[kind]}
    middleware: ${MANDATE_MIDDLEWARE[kind]}
    mysql: { password: "Env:MYSQL_ROOT_PASSWORD", database: bench }
`;
  const path = join(base, 'backer.yml');
  await writeFile(path, text);
  return { path, socket: join(base, 'data', 'backer.sock') };
}

/** A tiny `files` mandate (Docker off) for the start-up figures: a few small files, gzip, a local target. */
export async function writeTinyConfig(dir: string): Promise<{ path: string; socket: string; files: string; out: string }> {
  const base = join(dir, 'tiny');
  const files = join(base, 'files');
  await mkdir(join(files, 'sub'), { recursive: true });
  for (let i = 0; i < 8; i++) await writeFile(join(files, i % 2 ? 'sub' : '', `f${i}.txt`), `tiny file ${i}\n`.repeat(200));
  const text = `data_dir: ${base}/data
log: { level: warn }
docker: { enabled: false }
targets:
  - { name: local, type: local, path: ${base}/local }
middleware:
  - { name: gz, type: gzip, level: 6 }
mandates:
  tiny:
    type: files
    interval: "0 0 29 2 *"
    middleware: gz
    files: { path: ${files} }
`;
  const path = join(base, 'backer.yml');
  await writeFile(path, text);
  return { path, socket: join(base, 'data', 'backer.sock'), files, out: join(base, 'shell.tar.gz') };
}
