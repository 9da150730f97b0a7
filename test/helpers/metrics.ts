import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:net';

/** One sample of the Prometheus text format: its name, labels and value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface HttpText {
  status: number;
  type: string;
  body: string;
}

/** A port nothing listens on right now (bound to port 0 on loopback, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

/** GET (or another method) over a unix socket or TCP, the body as text. */
export function httpText(to: { socketPath: string } | { port: number }, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<HttpText> {
  return new Promise((resolve, reject) => {
    const where = 'socketPath' in to ? { socketPath: to.socketPath } : { host: '127.0.0.1', port: to.port };
    const req = request({ ...where, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE_RE.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key = '', value = ''] of (match[2] ?? '').matchAll(LABEL_RE)) labels[key] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the sample with exactly these labels, or undefined. */
export function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels);
  return samples.find((s) => s.name === name && Object.keys(s.labels).length === wanted.length && wanted.every(([k, v]) => s.labels[k] === v))?.value;
}

/** The metric names the text declares (`# TYPE` lines). */
export function metricNames(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1] ?? '');
}

/** Runs a program with `input` on stdin: its exit code and both outputs. */
export function runWithInput(command: string, args: string[], input: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
    child.stdin.end(input);
  });
}

export interface PrometheusServer {
  port: number;
  output(): string;
  /** An instant query: each series' labels (with __name__) and value. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: number }[]>;
  /** Active alerts (pending or firing). */
  alerts(): Promise<{ labels: Record<string, string>; state: string }[]>;
  /** SIGTERM by pid, then its exit. */
  stop(): Promise<void>;
}

async function getJson<T>(port: number, path: string): Promise<T> {
  const res = await httpText({ port }, path);
  if (res.status !== 200) throw new Error(`prometheus ${path}: HTTP ${res.status} ${res.body}`);
  return (JSON.parse(res.body) as { data: T }).data;
}

/** A real Prometheus (Debian's /usr/bin/prometheus) on a free loopback port with `configFile`, storage in `dir`. */
export async function startPrometheus(configFile: string, dir: string): Promise<PrometheusServer> {
  const port = await freePort();
  const child = spawn('/usr/bin/prometheus', [
    `--config.file=${configFile}`, `--storage.tsdb.path=${dir}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const server: PrometheusServer = {
    port,
    output: () => out,
    async query(promql) {
      const data = await getJson<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(port, `/api/v1/query?query=${encodeURIComponent(promql)}`);
      return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async alerts() {
      return (await getJson<{ alerts: { labels: Record<string, string>; state: string }[] }>(port, '/api/v1/alerts')).alerts;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await exited;
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${out}`);
    const ready = await httpText({ port }, '/-/ready').then((r) => r.status === 200, () => false);
    if (ready) return server;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`prometheus did not become ready:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Calls `probe` every 500 ms until it returns a value (not undefined) or `timeoutMs` passed. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
