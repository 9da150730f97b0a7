import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpgMiddlewareConfig } from '../../src/config/schema.js';
import { parseConfigText } from '../../src/config/load.js';
import { createGpgMiddleware } from '../../src/middleware/gpg.js';
import { createMiddleware } from '../../src/middleware/index.js';
import type { Middleware } from '../../src/middleware/types.js';
import {
  childPids,
  cmdline,
  describeMiddlewareSuite,
  environ,
  expectBackerError,
  generatedStream,
  HashSink,
  runTool,
  transform,
  type ToolResult,
} from './suite.js';

const PASSPHRASE = `gpg pass ${randomBytes(6).toString('hex')}`;
const BOB_KEY_PASSPHRASE = `bob key ${randomBytes(6).toString('hex')}`;
const signal = (): AbortSignal => new AbortController().signal;
const sample = Buffer.concat([Buffer.from('INSERT INTO secrets VALUES ("launch codes");\n'.repeat(200)), randomBytes(5000)]);

/** A keyring made with the real gpg, as a user would: alice (unprotected), bob (protected), mallory. */
let keysHome: string;
let workDir: string;
const keys = { alicePub: '', aliceSec: '', bobPub: '', bobSec: '', malloryPub: '', mallorySec: '' };
/** Every instance the tests make, closed at the end so that no home outlives the file. */
const instances: Middleware[] = [];

function make(config: Partial<GpgMiddlewareConfig>): Middleware {
  const m = createGpgMiddleware({ name: 'seal', type: 'gpg', public_keys: [], public_key_files: [], ...config });
  instances.push(m);
  return m;
}
const symmetric = (passphrase = PASSPHRASE): Middleware => make({ passphrase });
const toAlice = (): Middleware => make({ public_keys: [keys.alicePub], private_key: keys.aliceSec });

/** The real gpg on the test keyring; a passphrase goes first on stdin (--passphrase-fd 0), never in argv. */
function gpg(args: string[], input: Buffer, passphrase?: string): Promise<ToolResult> {
  const secret = passphrase === undefined ? [] : ['--passphrase-fd', '0'];
  const stdin = passphrase === undefined ? input : Buffer.concat([Buffer.from(`${passphrase}\n`), input]);
  return runTool('gpg', ['--batch', '--no-tty', '--quiet', '--homedir', keysHome, '--pinentry-mode', 'loopback', ...secret, ...args], stdin);
}

async function ok(result: Promise<ToolResult>): Promise<Buffer> {
  const r = await result;
  if (r.code !== 0) throw new Error(`gpg exited with ${String(r.code)}: ${r.stderr}`);
  return r.stdout;
}

async function generateKey(user: string, passphrase: string): Promise<{ pub: string; sec: string }> {
  const uid = `${user} <${user}@example.test>`;
  await ok(gpg(['--quick-gen-key', uid, 'future-default', 'default', 'never'], Buffer.alloc(0), passphrase));
  const pub = await ok(gpg(['--armor', '--export', `${user}@example.test`], Buffer.alloc(0)));
  const sec = await ok(gpg(['--armor', '--export-secret-keys', `${user}@example.test`], Buffer.alloc(0), passphrase));
  return { pub: pub.toString(), sec: sec.toString() };
}

/** gpg-agent processes that serve `home` (they are daemons, not our children). */
function agentsOf(home: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return argv[0]?.endsWith('gpg-agent') === true && argv.includes(home);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Runs 8 MiB through encode then decode and returns what the gpg children showed while running. */
async function observeChildren(encode: Middleware, decode: Middleware): Promise<{ argv: string[]; env: string[] }[]> {
  const before = new Set(childPids());
  let seen: { argv: string[]; env: string[] }[] = [];
  const sink = new HashSink(() => {
    seen = childPids()
      .filter((p) => !before.has(p))
      .map((p) => ({ argv: cmdline(p), env: environ(p) }));
  });
  const source = generatedStream(8 * 1024 * 1024);
  await pipeline(source.stream, encode.encode(signal()), decode.decode(signal()), sink);
  expect(sink.digest()).toBe(source.sha256());
  return seen;
}

function homeOf(argv: string[]): string {
  const home = argv[argv.indexOf('--homedir') + 1];
  if (home === undefined) throw new Error(`no --homedir in ${argv.join(' ')}`);
  return home;
}

/** Every regular file under `dir` that contains one of `needles`. */
function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  const walk = (path: string): void => {
    try {
      const st = statSync(path);
      if (st.isDirectory()) for (const e of readdirSync(path)) walk(join(path, e));
      else if (st.isFile() && st.size < 4 * 1024 * 1024) {
        const text = readFileSync(path, 'latin1');
        if (needles.some((n) => text.includes(n))) hits.push(path);
      }
    } catch {
      // gone or unreadable while we looked: other tests use the temp directory too
    }
  };
  walk(dir);
  return hits;
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'gpg-test-'));
  keysHome = join(workDir, 'keyring');
  await ok(runTool('mkdir', ['-m', '700', keysHome], Buffer.alloc(0)));
  const [alice, bob, mallory] = [await generateKey('alice', ''), await generateKey('bob', BOB_KEY_PASSPHRASE), await generateKey('mallory', '')];
  Object.assign(keys, { alicePub: alice.pub, aliceSec: alice.sec, bobPub: bob.pub, bobSec: bob.sec, malloryPub: mallory.pub, mallorySec: mallory.sec });
});

afterAll(async () => {
  await Promise.all(instances.map((m) => m.close?.() ?? Promise.resolve()));
  await runTool('gpgconf', ['--homedir', keysHome, '--kill', 'gpg-agent'], Buffer.alloc(0));
  await rm(workDir, { recursive: true, force: true });
});

describeMiddlewareSuite('gpg (passphrase)', () => symmetric(), ['gpg']);
describeMiddlewareSuite('gpg (public key)', () => toAlice(), ['gpg']);

describe('gpg middleware, symmetric, against the real gpg program', () => {
  it('is chosen by createMiddleware', () => {
    const m = createMiddleware({ name: 'seal', type: 'gpg', passphrase: PASSPHRASE, public_keys: [], public_key_files: [] });
    instances.push(m);
    expect(m).toMatchObject({ name: 'seal', type: 'gpg', extension: '.gpg', mime: 'application/pgp-encrypted' });
  });

  it('writes AES256 output that a plain `gpg --decrypt` decrypts with the passphrase', async () => {
    const encoded = await transform(sample, symmetric().encode(signal()));
    const packets = await gpg(['--list-packets'], encoded, PASSPHRASE);
    expect(packets.stdout.toString()).toMatch(/symkey enc packet: version \d+, cipher 9/); // 9 = AES256
    expect((await ok(gpg(['--decrypt'], encoded, PASSPHRASE))).equals(sample)).toBe(true);
  });

  it('decrypts what a plain `gpg --symmetric` wrote', async () => {
    const encrypted = await ok(gpg(['--symmetric'], sample, PASSPHRASE));
    expect((await transform(encrypted, symmetric().decode(signal()))).equals(sample)).toBe(true);
  });

  it('fails with MIDDLEWARE_FAILED on a wrong passphrase, without revealing either one', async () => {
    const encoded = await transform(sample, symmetric().encode(signal()));
    const wrong = `not the passphrase ${randomBytes(4).toString('hex')}`;
    const err = await expectBackerError(transform(encoded, symmetric(wrong).decode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.message).toMatch(/^gpg exited with code 2: .*decryption failed/s);
    const visible = JSON.stringify({ message: err.message, details: err.details });
    expect(visible).not.toContain(PASSPHRASE);
    expect(visible).not.toContain(wrong);
  });

  it('passes the passphrase on stdin only: not in argv, not in the environment, not in any file', async () => {
    process.env['BACKER_TEST_SPY'] = 'must-not-leak';
    try {
      const before = new Set(readdirSync(tmpdir()));
      const m = symmetric();
      const seen = await observeChildren(m, m);
      expect(seen.map((s) => s.argv[0])).toEqual(['gpg', 'gpg']);
      for (const { argv, env } of seen) {
        expect(argv.join(' ')).not.toContain(PASSPHRASE);
        expect(argv).toEqual(expect.arrayContaining(['--batch', '--no-tty', '--passphrase-fd', '0', '--pinentry-mode', 'loopback']));
        expect(env.map((e) => e.split('=')[0])).toEqual(['PATH']);
        expect(env.join('\n')).not.toContain(PASSPHRASE);
      }
      const home = homeOf(seen[0]?.argv ?? []);
      expect(statSync(home).mode & 0o777).toBe(0o700);
      const fresh = readdirSync(tmpdir()).filter((e) => !before.has(e));
      expect(fresh).toContain(home.split('/').pop());
      expect(fresh.flatMap((e) => filesContaining(join(tmpdir(), e), [PASSPHRASE]))).toEqual([]);
      await m.close?.();
      expect(existsSync(home)).toBe(false);
    } finally {
      delete process.env['BACKER_TEST_SPY'];
    }
  });
});

describe('gpg middleware, public keys, against the real gpg program', () => {
  it('writes output that a plain `gpg --decrypt` with the private key decrypts', async () => {
    const encoded = await transform(sample, make({ public_keys: [keys.alicePub] }).encode(signal()));
    expect((await ok(gpg(['--decrypt'], encoded))).equals(sample)).toBe(true);
  });

  it('decrypts what a plain `gpg --encrypt --recipient` wrote', async () => {
    const encrypted = await ok(gpg(['--trust-model', 'always', '--encrypt', '--recipient', 'alice@example.test'], sample));
    expect((await transform(encrypted, toAlice().decode(signal()))).equals(sample)).toBe(true);
  });

  it('encrypts to every key of every public_key_files entry; a protected private key needs its passphrase', async () => {
    const file = join(workDir, 'team.asc');
    await writeFile(file, keys.alicePub + keys.bobPub);
    const encoded = await transform(sample, make({ public_key_files: [file] }).encode(signal()));
    const packets = (await gpg(['--list-packets'], encoded)).stdout.toString();
    expect(packets.match(/pubkey enc packet/g)).toHaveLength(2);
    // bob's own gpg (protected key) and our decode with bob's key both read it
    expect((await ok(gpg(['--decrypt'], encoded, BOB_KEY_PASSPHRASE))).equals(sample)).toBe(true);
    const bob = make({ public_key_files: [file], private_key: keys.bobSec, private_key_passphrase: BOB_KEY_PASSPHRASE });
    expect((await transform(encoded, bob.decode(signal()))).equals(sample)).toBe(true);
    const wrong = make({ public_key_files: [file], private_key: keys.bobSec, private_key_passphrase: 'not bob’s passphrase' });
    const err = await expectBackerError(transform(encoded, wrong.decode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.message).toMatch(/^gpg exited with code 2: /);
  });

  it('reads the private key from private_key_file', async () => {
    const file = join(workDir, 'alice.sec.asc');
    await writeFile(file, keys.aliceSec, { mode: 0o600 });
    const encoded = await transform(sample, make({ public_keys: [keys.alicePub] }).encode(signal()));
    const m = make({ public_keys: [keys.alicePub], private_key_file: file });
    expect((await transform(encoded, m.decode(signal()))).equals(sample)).toBe(true);
  });

  it('fails with MIDDLEWARE_FAILED when the private key is not the recipient’s', async () => {
    const encoded = await transform(sample, make({ public_keys: [keys.alicePub] }).encode(signal()));
    const mallory = make({ public_keys: [keys.malloryPub], private_key: keys.mallorySec });
    const err = await expectBackerError(transform(encoded, mallory.decode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.message).toMatch(/^gpg exited with code 2: .*No secret key/s);
  });

  it('refuses to decode without a private key, clearly and permanently', async () => {
    const encoded = await transform(sample, make({ public_keys: [keys.alicePub] }).encode(signal()));
    const err = await expectBackerError(transform(encoded, make({ public_keys: [keys.alicePub] }).decode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.message).toBe('gpg middleware seal cannot decode: it has public keys but no private_key or private_key_file (it can only encrypt)');
    expect(err.permanent).toBe(true);
  });

  it('fails clearly on a public key file that holds no key or does not exist', async () => {
    const junk = join(workDir, 'junk.asc');
    await writeFile(junk, 'not a key\n');
    const err = await expectBackerError(transform(sample, make({ public_key_files: [junk] }).encode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.message).toMatch(/^gpg middleware seal: cannot import the public key of .*junk\.asc: gpg exited with code 2: .*no valid OpenPGP data/s);
    const missing = await expectBackerError(transform(sample, make({ public_key_files: ['/nonexistent/key.asc'] }).encode(signal())), 'MIDDLEWARE_FAILED');
    expect(missing.message).toMatch(/cannot read public_key_files entry \/nonexistent\/key\.asc/);
  });

  it('keeps private keys out of argv, the environment and plain files, and close() removes the home and stops its agent', async () => {
    const before = new Set(readdirSync(tmpdir()));
    const bob = make({ public_keys: [keys.bobPub], private_key: keys.bobSec, private_key_passphrase: BOB_KEY_PASSPHRASE });
    const seen = await observeChildren(bob, bob);
    expect(seen.map((s) => s.argv[0])).toEqual(['gpg', 'gpg']);
    const secretLines = keys.bobSec.split('\n').filter((l) => l.length >= 20 && !l.startsWith('-----'));
    for (const { argv, env } of seen) {
      const text = argv.join(' ') + env.join('\n');
      expect(text).not.toContain(BOB_KEY_PASSPHRASE);
      for (const line of secretLines) expect(text).not.toContain(line);
      expect(env.map((e) => e.split('=')[0])).toEqual(['PATH']);
    }
    const home = homeOf(seen[0]?.argv ?? []);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    const fresh = readdirSync(tmpdir()).filter((e) => !before.has(e));
    expect(fresh).toEqual(expect.arrayContaining([home.split('/').pop()]));
    // The home itself holds the key in the agent's own format, by design, until close().
    expect(fresh.flatMap((e) => filesContaining(join(tmpdir(), e), [BOB_KEY_PASSPHRASE, ...secretLines]))).toEqual([]);
    expect(agentsOf(home)).not.toEqual([]);
    await bob.close?.();
    await bob.close?.(); // idempotent
    expect(existsSync(home)).toBe(false);
    expect(agentsOf(home)).toEqual([]);
  });
});

describe('gpg middleware while its home is being prepared', () => {
  it('starts no gpg when aborted before the home is ready', async () => {
    const before = new Set(childPids());
    const controller = new AbortController();
    const m = make({ public_keys: [keys.alicePub, keys.bobPub] });
    const stream = m.encode(controller.signal);
    controller.abort(new Error('test abort'));
    await expectBackerError(transform(sample, stream), 'JOB_CANCELLED');
    // the imports finish in the background; no encrypting gpg may follow them
    await new Promise((r) => setTimeout(r, 1000));
    expect(childPids().filter((p) => !before.has(p))).toEqual([]);
    // and the instance still works for the next run
    const encoded = await transform(sample, m.encode(signal()));
    expect((await ok(gpg(['--decrypt'], encoded))).equals(sample)).toBe(true);
  });
});

describe('gpg middleware config', () => {
  const parse = (entry: string) => parseConfigText(`middleware:\n  - ${entry}\n`, 'backer.yml', { PASS: PASSPHRASE }, '/etc/backer');
  const problems = (entry: string) => parse(entry).problems;

  it('accepts a passphrase or public keys, with defaults', () => {
    const { config, problems: none } = parse('{ name: g, type: gpg, passphrase: "${PASS}" }');
    expect(none).toEqual([]);
    expect(config.middleware).toEqual([{ name: 'g', type: 'gpg', passphrase: PASSPHRASE, public_keys: [], public_key_files: [] }]);
    expect(problems('{ name: g, type: gpg, public_key_files: [/etc/keys/ops.asc], private_key_file: /etc/keys/ops.sec }')).toEqual([]);
  });

  it('names the entry and what is missing or contradictory', () => {
    expect(problems('{ name: g, type: gpg }')).toEqual([{ where: 'backer.yml: middleware[0]', message: 'gpg needs either passphrase or public_keys/public_key_files' }]);
    expect(problems('{ name: g, type: gpg, passphrase: x, public_key_files: [/k.asc], private_key_file: /k.sec }')).toEqual([
      { where: 'backer.yml: middleware[0].passphrase', message: 'gpg takes either passphrase or public_keys/public_key_files, not both' },
      { where: 'backer.yml: middleware[0].private_key_file', message: 'only for public-key mode: with passphrase, decoding uses the passphrase' },
    ]);
    expect(problems('{ name: g, type: gpg, public_key_files: [keys/ops.asc], private_key_passphrase: x }')).toEqual([
      { where: 'backer.yml: middleware[0].public_key_files[0]', message: 'expected an absolute path' },
      { where: 'backer.yml: middleware[0].private_key_passphrase', message: 'unlocks private_key or private_key_file, and neither is given' },
    ]);
    expect(problems('{ name: g, type: gpg, passphrase: "two\\nlines" }')).toEqual([
      { where: 'backer.yml: middleware[0].passphrase', message: 'must be a single line: gpg reads only the first line' },
    ]);
  });

  it('tells a private key pasted into public_keys apart from garbage, without echoing either', () => {
    const text = `{ name: g, type: gpg, public_keys: [${JSON.stringify(keys.aliceSec)}, "hello"] }`;
    const found = problems(text);
    expect(found).toEqual([
      { where: 'backer.yml: middleware[0].public_keys[0]', message: 'this is a private key: public_keys take public keys only (the private key goes in private_key)' },
      { where: 'backer.yml: middleware[0].public_keys[1]', message: 'expected an ASCII-armored public key (-----BEGIN PGP PUBLIC KEY BLOCK-----…)' },
    ]);
  });
});
