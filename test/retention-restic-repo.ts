/**
 * Adds snapshots to a restic repository (format version 1) without running `restic backup` once
 * per snapshot (about a second each, for the key derivation): the one snapshot restic wrote is
 * decrypted with the repository's master key and written again with other timestamps, encrypted
 * as restic does (AES-256-CTR, Poly1305-AES over the ciphertext, the file named by its SHA-256).
 * restic itself then reads and checks every one of them (`restic snapshots`, `restic forget`).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

interface Keys {
  encrypt: Buffer;
  macK: Buffer;
  macR: Buffer;
}

const le = (bytes: Buffer): bigint => {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] ?? 0);
  return n;
};

/** Poly1305-AES (the AES-128 of the nonce under k is the pad), as restic's crypto package uses it. */
function mac(message: Buffer, nonce: Buffer, keys: Keys): Buffer {
  const aes = createCipheriv('aes-128-ecb', keys.macK, null).setAutoPadding(false);
  const s = le(Buffer.concat([aes.update(nonce), aes.final()]));
  const r = le(keys.macR) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const p = (1n << 130n) - 5n;
  let acc = 0n;
  for (let i = 0; i < message.length; i += 16) {
    const block = message.subarray(i, i + 16);
    acc = ((acc + le(block) + (1n << BigInt(8 * block.length))) * r) % p;
  }
  let tag = (acc + s) & ((1n << 128n) - 1n);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) {
    out[i] = Number(tag & 0xffn);
    tag >>= 8n;
  }
  return out;
}

function open(data: Buffer, keys: Keys): Buffer {
  const iv = data.subarray(0, 16);
  const ciphertext = data.subarray(16, data.length - 16);
  if (!mac(ciphertext, iv, keys).equals(data.subarray(data.length - 16))) throw new Error('restic MAC mismatch: the Poly1305 here is wrong');
  const d = createDecipheriv('aes-256-ctr', keys.encrypt, iv);
  return Buffer.concat([d.update(ciphertext), d.final()]);
}

function seal(plaintext: Buffer, keys: Keys): Buffer {
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-ctr', keys.encrypt, iv);
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([iv, ciphertext, mac(ciphertext, iv, keys)]);
}

async function onlyFile(dir: string): Promise<Buffer> {
  const names = await readdir(dir);
  if (names.length !== 1 || names[0] === undefined) throw new Error(`expected one file in ${dir}, found ${names.length}`);
  return readFile(join(dir, names[0]));
}

/** The master key, from the repository's one key file and the password. */
async function masterKey(repo: string, password: string): Promise<Keys> {
  const file = JSON.parse((await onlyFile(join(repo, 'keys'))).toString('utf8')) as { N: number; r: number; p: number; salt: string; data: string };
  const derived = scryptSync(password, Buffer.from(file.salt, 'base64'), 64, { N: file.N, r: file.r, p: file.p, maxmem: 256 * file.N * file.r * file.p + 1024 * 1024 });
  const user: Keys = { encrypt: derived.subarray(0, 32), macK: derived.subarray(32, 48), macR: derived.subarray(48, 64) };
  const master = JSON.parse(open(Buffer.from(file.data, 'base64'), user).toString('utf8')) as { mac: { k: string; r: string }; encrypt: string };
  return { encrypt: Buffer.from(master.encrypt, 'base64'), macK: Buffer.from(master.mac.k, 'base64'), macR: Buffer.from(master.mac.r, 'base64') };
}

/** Writes one snapshot per time (ms), copies of the repository's only snapshot with that time. */
export async function addSnapshots(repo: string, password: string, times: readonly number[]): Promise<void> {
  const keys = await masterKey(repo, password);
  const template = JSON.parse(open(await onlyFile(join(repo, 'snapshots')), keys).toString('utf8')) as Record<string, unknown>;
  delete template.parent;
  for (const time of times) {
    const snapshot = { ...template, time: new Date(time).toISOString().replace('.000Z', 'Z') };
    const file = seal(Buffer.from(JSON.stringify(snapshot)), keys);
    await writeFile(join(repo, 'snapshots', createHash('sha256').update(file).digest('hex')), file);
  }
}
