import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { s3Client } from './env.js';

export async function s3Get(bucket: string, key: string): Promise<Buffer> {
  const client = s3Client();
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const chunks: Buffer[] = [];
  for await (const c of out.Body as Readable) chunks.push(c as Buffer);
  client.destroy();
  return Buffer.concat(chunks);
}

export function digest(data: Buffer): { size: number; md5: string; sha256: string } {
  return {
    size: data.length,
    md5: createHash('md5').update(data).digest('hex'),
    sha256: createHash('sha256').update(data).digest('hex'),
  };
}

/** Runs a real program with `input` on stdin and returns its stdout; rejects on non-zero exit. */
export async function runProgram(command: string, args: string[], input: Buffer, env: Record<string, string> = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${command} exited ${code}: ${err}`))));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/**
 * Undoes a manifest's middleware steps with the REAL programs, last step first, and checks the
 * size and sha256 recorded for every step on the way. Returns the raw dump.
 */
export async function decodeWithRealTools(
  artifact: Buffer,
  steps: { processor: string; size: number; sha256: string }[],
  keys: { ccrypt: string; gpgPassphrase: string; ageIdentity: string },
): Promise<Buffer> {
  let data = artifact;
  for (let i = steps.length - 1; i >= 1; i--) {
    const step = steps[i];
    if (!step) break;
    if (digest(data).sha256 !== step.sha256) throw new Error(`${step.processor}: sha256 differs from the manifest`);
    const type = step.processor.split(':')[1];
    if (type === 'gzip') data = await runProgram('gzip', ['-d'], data);
    else if (type === 'zstd') data = await runProgram('zstd', ['-d', '-q', '-c'], data);
    else if (type === 'ccrypt') data = await runProgram('ccrypt', ['-d', '-E', 'KEY'], data, { KEY: keys.ccrypt });
    else if (type === 'gpg') {
      const home = await freshGnupgHome();
      try {
        data = await runProgram('gpg', ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase-fd', '0', '--decrypt'], Buffer.concat([Buffer.from(`${keys.gpgPassphrase}\n`), data]), {
          GNUPGHOME: home,
        });
      } finally {
        await runProgram('gpgconf', ['--kill', 'all'], Buffer.alloc(0), { GNUPGHOME: home }).catch(() => undefined);
        await rm(home, { recursive: true, force: true });
      }
    } else if (type === 'age') {
      const dir = await mkdtemp(join(tmpdir(), 'bk-age-'));
      await writeFile(join(dir, 'key.txt'), `${keys.ageIdentity}\n`, { mode: 0o600 });
      data = await runProgram('age', ['-d', '-i', join(dir, 'key.txt')], data);
      await rm(dir, { recursive: true, force: true });
    } else throw new Error(`no decoder for ${step.processor}`);
  }
  const raw = steps[0];
  if (raw && digest(data).sha256 !== raw.sha256) throw new Error('raw dump: sha256 differs from the manifest');
  return data;
}

async function freshGnupgHome(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-gpg-'));
  await chmod(dir, 0o700);
  return dir;
}
