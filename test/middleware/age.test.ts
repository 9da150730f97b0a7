import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgeMiddlewareConfig } from '../../src/config/schema.js';
import { parseConfigText } from '../../src/config/load.js';
import { createAgeMiddleware } from '../../src/middleware/age.js';
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
} from './suite.js';

const signal = (): AbortSignal => new AbortController().signal;
const sample = Buffer.concat([Buffer.from('INSERT INTO secrets VALUES ("launch codes");\n'.repeat(200)), randomBytes(5000)]);

interface KeyPair {
  /** The identity file as age-keygen wrote it (comments and the AGE-SECRET-KEY line). */
  identity: string;
  secretKey: string;
  recipient: string;
  file: string;
}

let workDir: string;
let alice: KeyPair;
let bob: KeyPair;

/** A key pair made by the real age-keygen, as a user would. */
async function keygen(name: string): Promise<KeyPair> {
  const file = join(workDir, `${name}.txt`);
  const made = await runTool('age-keygen', ['-o', file], Buffer.alloc(0));
  if (made.code !== 0) throw new Error(`age-keygen failed: ${made.stderr}`);
  const identity = readFileSync(file, 'utf8');
  const secretKey = identity.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-')) ?? '';
  const recipient = (await runTool('age-keygen', ['-y', file], Buffer.alloc(0))).stdout.toString().trim();
  return { identity, secretKey, recipient, file };
}

function make(config: Partial<AgeMiddlewareConfig>): Middleware {
  return createAgeMiddleware({ name: 'lock', type: 'age', recipients: [], ...config });
}
const forAlice = (): Middleware => make({ recipients: [alice.recipient], identity: alice.identity });

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'age-test-'));
  [alice, bob] = [await keygen('alice'), await keygen('bob')];
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describeMiddlewareSuite('age', () => forAlice(), ['age']);

describe('age middleware against the real age program', () => {
  it('is chosen by createMiddleware', () => {
    const m = createMiddleware({ name: 'lock', type: 'age', recipients: [alice.recipient] });
    expect(m).toMatchObject({ name: 'lock', type: 'age', extension: '.age', mime: 'application/age-encryption' });
  });

  it('writes output that a plain `age -d -i key.txt` decrypts', async () => {
    const encoded = await transform(sample, make({ recipients: [alice.recipient] }).encode(signal()));
    expect(encoded.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    const result = await runTool('age', ['-d', '-i', alice.file], encoded);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.equals(sample)).toBe(true);
  });

  it('decrypts what a plain `age -e -r` wrote, with identity or identity_file', async () => {
    const result = await runTool('age', ['-e', '-r', alice.recipient], sample);
    expect(result.code).toBe(0);
    expect((await transform(result.stdout, forAlice().decode(signal()))).equals(sample)).toBe(true);
    const fromFile = make({ recipients: [alice.recipient], identity_file: alice.file });
    expect((await transform(result.stdout, fromFile.decode(signal()))).equals(sample)).toBe(true);
  });

  it('encrypts to every recipient, inline and from recipients_file', async () => {
    const file = join(workDir, 'recipients.txt');
    await writeFile(file, `# the ops team\n${bob.recipient}\n`);
    const encoded = await transform(sample, make({ recipients: [alice.recipient], recipients_file: file }).encode(signal()));
    for (const key of [alice, bob]) {
      const result = await runTool('age', ['-d', '-i', key.file], encoded);
      expect(result.code).toBe(0);
      expect(result.stdout.equals(sample)).toBe(true);
    }
  });

  it('fails with MIDDLEWARE_FAILED on a wrong identity, without revealing it', async () => {
    const encoded = await transform(sample, make({ recipients: [alice.recipient] }).encode(signal()));
    const err = await expectBackerError(transform(encoded, make({ recipients: [bob.recipient], identity: bob.identity }).decode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.message).toMatch(/^age exited with code 1: age: error: no identity matched any of the recipients/);
    const visible = JSON.stringify({ message: err.message, details: err.details });
    expect(visible).not.toContain(bob.secretKey);
    expect(visible).not.toContain(alice.secretKey);
  });

  it('refuses to decode without an identity, clearly and permanently', async () => {
    const encoded = await transform(sample, make({ recipients: [alice.recipient] }).encode(signal()));
    const err = await expectBackerError(transform(encoded, make({ recipients: [alice.recipient] }).decode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.message).toBe('age middleware lock cannot decode: it has no identity or identity_file (it can only encrypt)');
    expect(err.permanent).toBe(true);
  });

  it('hands the identity over on a pipe: not in argv, not in age’s environment, not in any file', async () => {
    process.env['BACKER_TEST_SPY'] = 'must-not-leak';
    try {
      const before = new Set(readdirSync(tmpdir()));
      const beforePids = new Set(childPids());
      let seen: { argv: string[]; env: string[]; fd3: string }[] = [];
      const sink = new HashSink(() => {
        seen = childPids()
          .filter((p) => !beforePids.has(p))
          .map((p) => ({ argv: cmdline(p), env: environ(p), fd3: readlinkOr(`/proc/${p}/fd/3`) }));
      });
      const source = generatedStream(8 * 1024 * 1024);
      await pipeline(source.stream, forAlice().encode(signal()), forAlice().decode(signal()), sink);
      expect(sink.digest()).toBe(source.sha256());
      // By the first output byte the shell has exec'd age: same pid, clean argv and environment.
      expect(seen.map((s) => s.argv)).toEqual([
        ['age', '--encrypt', '-r', alice.recipient],
        ['age', '--decrypt', '-i', '/dev/fd/3'],
      ]);
      expect(seen[1]?.fd3).toMatch(/^pipe:/);
      for (const { argv, env } of seen) {
        expect(argv.join(' ')).not.toContain(alice.secretKey);
        // PATH from Backer; PWD is what the shell that exec'd age exports. No key, nothing of Backer's.
        expect(['PATH', 'PATH,PWD']).toContain(env.map((e) => e.split('=')[0]).sort().join(','));
        expect(env.join('\n')).not.toContain(alice.secretKey);
        expect(env.join('\n')).not.toContain('must-not-leak');
      }
      const fresh = readdirSync(tmpdir()).filter((e) => !before.has(e));
      expect(fresh.flatMap((e) => filesContaining(join(tmpdir(), e), alice.secretKey))).toEqual([]);
    } finally {
      delete process.env['BACKER_TEST_SPY'];
    }
  });
});

describe('age middleware config', () => {
  const parse = (entry: string) => parseConfigText(`middleware:\n  - ${entry}\n`, 'backer.yml', {}, '/etc/backer');
  const problems = (entry: string) => parse(entry).problems;

  it('accepts recipients with an optional identity', () => {
    const { config, problems: none } = parse(`{ name: a, type: age, recipients: [${alice.recipient}], identity_file: /etc/backer/age.key }`);
    expect(none).toEqual([]);
    expect(config.middleware).toEqual([{ name: 'a', type: 'age', recipients: [alice.recipient], identity_file: '/etc/backer/age.key' }]);
  });

  it('refuses a passphrase, saying why and what to use instead', () => {
    expect(problems(`{ name: a, type: age, passphrase: hunter22 }`)).toEqual([
      {
        where: 'backer.yml: middleware[0].passphrase',
        message: 'age reads passphrases only from a terminal, which Backer does not have: use recipients (age-keygen) instead',
      },
    ]);
  });

  it('names missing recipients, secret keys in the wrong place, relative paths and doubled identities', () => {
    expect(problems('{ name: a, type: age }')).toEqual([{ where: 'backer.yml: middleware[0]', message: 'age needs recipients or recipients_file' }]);
    expect(problems(`{ name: a, type: age, recipients: [${alice.secretKey}, bob], recipients_file: keys.txt }`)).toEqual([
      { where: 'backer.yml: middleware[0].recipients_file', message: 'expected an absolute path' },
      { where: 'backer.yml: middleware[0].recipients[0]', message: 'this is a secret key: recipients take public keys (age1…), the secret key goes in identity' },
      { where: 'backer.yml: middleware[0].recipients[1]', message: 'expected an age public key (age1…) or an SSH public key (ssh-ed25519 …, ssh-rsa …)' },
    ]);
    expect(problems(`{ name: a, type: age, recipients: [${alice.recipient}], identity: ${alice.recipient}, identity_file: /k }`)).toEqual([
      { where: 'backer.yml: middleware[0].identity_file', message: 'give identity or identity_file, not both' },
      { where: 'backer.yml: middleware[0].identity', message: 'expected an age secret key (AGE-SECRET-KEY-1…) or an SSH private key' },
    ]);
  });
});

/** What an fd of a running process points to, e.g. `pipe:[1234]`; '' once it is gone. */
function readlinkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/** Every regular file under `dir` that contains `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (path: string): void => {
    try {
      const st = statSync(path);
      if (st.isDirectory()) for (const e of readdirSync(path)) walk(join(path, e));
      else if (st.isFile() && st.size < 4 * 1024 * 1024 && readFileSync(path, 'latin1').includes(needle)) hits.push(path);
    } catch {
      // gone or unreadable while we looked: other tests use the temp directory too
    }
  };
  walk(dir);
  return hits;
}
