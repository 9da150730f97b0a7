/**
 * The auth matrix against a real `backer daemon` process listening on 127.0.0.1 (api.listen) with a
 * token of each scope: for EVERY operation of the document it serves at /v1/openapi.json, no token
 * and a wrong token are 401, a read token on operate/admin routes and an operate token on admin
 * routes are 403; with an admin token every GET route answers and its JSON body validates against
 * the document's response schema (ajv, draft 2020). Audit lines name the token, never hold it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken } from '../src/api/auth.js';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import { startTcpDaemon, tcpRequest, type TcpDaemon, type TcpReply } from './helpers/api-tcp.js';
import { filesMandateYaml } from './helpers/env.js';
import { parseLines } from './helpers/logs.js';

const ID = randomBytes(3).toString('hex');
const MANDATE = `aa-files-${ID}`;
const PUBLIC = ['GET /healthz', 'GET /readyz', 'GET /v1/health'];

type Operation = { 'x-backer-scope': string; responses: Record<string, { content?: Record<string, { schema?: unknown }> }> };
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, unknown>;
}
interface Op {
  method: string;
  path: string;
  key: string;
  scope: string;
  op: Operation;
}

let t: TcpDaemon;
let doc: Document;
let ops: Op[];
let job: AnyJob;
let backupName: string;
let restoreTo: string;

/** Real names where the daemon has them, dummies elsewhere (a 404 is an answer too). */
function fill(path: string): string {
  return path
    .replace('/v1/mandates/{name}', `/v1/mandates/${MANDATE}`)
    .replace('/v1/targets/{name}', '/v1/targets/local')
    .replace('/v1/backups/{name}', `/v1/backups/${backupName}`)
    .replace('{id}', job.id)
    .replace(/\{[^}]+\}/g, 'dummy');
}

function send(op: Op, token: string | undefined): Promise<TcpReply> {
  const body = op.method === 'POST' ? (op.path === '/v1/restores' ? { mandate: MANDATE, to: restoreTo, dry_run: true } : {}) : undefined;
  return tcpRequest(t.url, op.method, fill(op.path), { token, body, headersOnly: op.path === '/v1/events' });
}

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aa-files-'));
  await writeFile(join(dir, 'a.txt'), 'alpha\n'.repeat(1000));
  restoreTo = `file:${join(await mkdtemp(join(tmpdir(), 'aa-restore-')), 'out')}`;
  t = await startTcpDaemon('api-auth', { extra: `mandates:\n${filesMandateYaml(MANDATE, 'AA_DIR', { target: 'local' })}`, env: { AA_DIR: dir } });
  const served = await tcpRequest(t.url, 'GET', '/v1/openapi.json', { token: t.tokens.read });
  expect(served.status, served.text).toBe(200);
  doc = JSON.parse(served.text) as Document;
  ops = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ method: method.toUpperCase(), path, key: `${method.toUpperCase()} ${path}`, scope: op['x-backer-scope'], op })),
  );
  const queued = await tcpRequest(t.url, 'POST', `/v1/mandates/${MANDATE}/backups`, { token: t.tokens.operate });
  expect(queued.status, queued.text).toBe(202);
  const id = (JSON.parse(queued.text) as { job: AnyJob }).job.id;
  const done = await tcpRequest(t.url, 'GET', `/v1/jobs/${id}?wait=60`, { token: t.tokens.read });
  job = (JSON.parse(done.text) as { job: AnyJob }).job;
  expect(job.state, done.text).toBe('succeeded');
  backupName = String((job.result as { name?: string } | null)?.name ?? 'dummy');
}, 180_000);

afterAll(async () => {
  await t?.daemon.stop();
});

describe('auth matrix over TCP', () => {
  it('the served document lists every route, the public ones exactly /healthz, /readyz and /v1/health', () => {
    expect(ops.length).toBeGreaterThan(15);
    expect(ops.filter((o) => o.scope === 'public').map((o) => o.key).sort()).toEqual([...PUBLIC].sort());
    for (const o of ops) expect(['public', 'read', 'operate', 'admin'], o.key).toContain(o.scope);
  });

  it('no token and a wrong token are 401 API_UNAUTHORIZED with WWW-Authenticate on every non-public route', async () => {
    const wrong = newToken().token;
    for (const o of ops.filter((x) => x.scope !== 'public')) {
      for (const token of [undefined, wrong]) {
        const reply = await send(o, token);
        expect(reply.status, `${o.key} token=${token === undefined ? 'none' : 'wrong'}`).toBe(401);
        expect(reply.headers['www-authenticate'], o.key).toMatch(/^Bearer/);
        expect(JSON.parse(reply.text), o.key).toMatchObject({ error: { code: 'API_UNAUTHORIZED' } });
      }
    }
  });

  it('a read token is 403 on operate and admin routes, an operate token on admin routes (downloads included)', async () => {
    const cases = ops.flatMap((o) => [
      ...(o.scope === 'operate' || o.scope === 'admin' ? [{ o, scope: 'read' as const }] : []),
      ...(o.scope === 'admin' ? [{ o, scope: 'operate' as const }] : []),
    ]);
    expect(cases.some((c) => c.o.key === 'GET /v1/backups/{name}/download')).toBe(true);
    for (const { o, scope } of cases) {
      const reply = await send(o, t.tokens[scope]);
      expect(reply.status, `${o.key} with ${scope}`).toBe(403);
      expect(JSON.parse(reply.text), o.key).toMatchObject({ error: { code: 'API_FORBIDDEN' } });
    }
  });

  it('public routes answer without a token', async () => {
    for (const o of ops.filter((x) => x.scope === 'public')) {
      const reply = await send(o, undefined);
      expect(reply.status, o.key).toBe(200);
    }
  });

  it('with an admin token every GET route answers, its JSON body valid against the document', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema({ $id: 'doc', components: doc.components });
    for (const o of ops.filter((x) => x.method === 'GET')) {
      const reply = await send(o, t.tokens.admin);
      expect([401, 403, 500], `${o.key}: ${reply.text}`).not.toContain(reply.status);
      const declared = o.op.responses[String(reply.status)];
      expect(declared, `${o.key} answered ${reply.status}, not in the document`).toBeDefined();
      const type = String(reply.headers['content-type'] ?? '').split(';')[0] ?? '';
      if (type !== 'application/json') {
        expect(Object.keys(declared?.content ?? {}), o.key).toContain(type);
        continue;
      }
      const schema = declared?.content?.['application/json']?.schema;
      const validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/')) as object);
      expect(validate(JSON.parse(reply.text)), `${o.key}: ${ajv.errorsText(validate.errors)}\n${reply.text.slice(0, 500)}`).toBe(true);
    }
  });

  it('audit lines name the token and the route, never the token itself; no token in any log line', async () => {
    const reply = await tcpRequest(t.url, 'POST', '/v1/restores', { token: t.tokens.admin, body: { mandate: MANDATE, to: restoreTo, dry_run: true } });
    expect(reply.status, reply.text).toBe(200);
    const lines = parseLines(t.daemon.output());
    const audits = lines.filter((l) => l.audit === true);
    expect(audits.find((l) => l.token === 'ci-admin' && l.path === '/v1/restores' && l.method === 'POST' && l.status === 200)).toMatchObject({ component: 'api', level: 30 });
    expect(audits.find((l) => l.token === 'ci-operate' && l.path === `/v1/mandates/${MANDATE}/backups` && l.status === 202)).toBeDefined();
    expect(audits.find((l) => l.token === 'ci-read' && l.status === 403)).toBeDefined();
    for (const raw of Object.values(t.tokens)) expect(t.daemon.output()).not.toContain(raw);
  });

  it('a malformed or non-JSON body is 400 API_BAD_REQUEST after the token was accepted; a bad field is named', async () => {
    const token = t.tokens.operate;
    for (const raw of [{ text: '{"mandate":', type: 'application/json' }, { text: 'mandate=x', type: 'text/plain' }, { text: '{}', type: null }]) {
      const reply = await tcpRequest(t.url, 'POST', '/v1/verifications', { token, raw });
      expect(reply.status, `${raw.type}: ${reply.text}`).toBe(400);
      expect(JSON.parse(reply.text), reply.text).toMatchObject({ error: { code: 'API_BAD_REQUEST' } });
    }
    const level = await tcpRequest(t.url, 'POST', '/v1/verifications', { token, body: { mandate: MANDATE, level: 'deep' } });
    expect(level.status).toBe(400);
    expect((JSON.parse(level.text) as { error: { message: string } }).error.message).toMatch(/^invalid request: level: /);
    const unknown = await tcpRequest(t.url, 'GET', '/v1/jobs?page=2', { token: t.tokens.read });
    expect(JSON.parse(unknown.text)).toEqual({ error: { code: 'API_BAD_REQUEST', message: 'unknown query parameter page' } });
  });

  it('the daemon still answers over its socket and TCP after all of it', async () => {
    expect((await callApi<{ status: string }>(t.socket, 'GET', '/v1/health')).status).toBe('ok');
    expect((await tcpRequest(t.url, 'GET', '/healthz')).status).toBe(200);
  });
});
