import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';

/** One answer of the daemon's API, whole: status, headers, raw body. */
export interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Opens a request on the daemon's unix socket and resolves with the response as it starts (its body still streaming). */
export function openRequest(socket: string, method: string, path: string): Promise<{ res: IncomingMessage; abort: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path }, (res) => resolve({ res, abort: () => req.destroy() }));
    req.on('error', reject);
    req.end();
  });
}

/** A whole request on the daemon's unix socket, any content type. */
export async function rawRequest(socket: string, method: string, path: string): Promise<RawReply> {
  const { res } = await openRequest(socket, method, path);
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

/** A JSON request: the status and the parsed body (whatever the status). */
export async function jsonRequest<T = Record<string, unknown>>(socket: string, method: string, path: string): Promise<{ status: number; body: T }> {
  const reply = await rawRequest(socket, method, path);
  if (!/^application\/json/.test(reply.headers['content-type'] ?? '')) throw new Error(`${method} ${path}: ${reply.status} ${reply.headers['content-type'] ?? ''}: ${reply.body.toString()}`);
  return { status: reply.status, body: JSON.parse(reply.body.toString('utf8')) as T };
}
