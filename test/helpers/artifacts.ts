import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
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
