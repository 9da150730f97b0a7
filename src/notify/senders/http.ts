/** The longest one HTTP delivery may take before it counts as failed. */
export const HTTP_TIMEOUT_MS = 15_000;

export interface HttpRequest {
  url: string;
  /** An object is sent as JSON; a string as text/plain. */
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * POSTs one request; a status outside 2xx throws with the status and the start of the answer
 * (never the URL: it may hold a token).
 */
export async function post(request: HttpRequest, signal: AbortSignal): Promise<void> {
  const isText = typeof request.body === 'string';
  const response = await fetch(request.url, {
    method: 'POST',
    headers: { 'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json', 'user-agent': 'backer', ...request.headers },
    body: isText ? (request.body as string) : JSON.stringify(request.body),
    signal: AbortSignal.any([signal, AbortSignal.timeout(HTTP_TIMEOUT_MS)]),
    redirect: 'error',
  });
  const text = await response.text().catch(() => '');
  if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}${text === '' ? '' : `: ${text.slice(0, 200)}`}`);
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
