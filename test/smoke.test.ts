import { inject, it, expect } from 'vitest';
import { docker } from './setup/services.js';

it('has a private docker engine and an S3 server', async () => {
  const host = inject('dockerHost');
  const out = await docker(host, ['run', '--rm', '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', 'hostuser:latest', 'echo', 'hello']);
  expect(out).toBe('hello');
  expect(inject('s3').endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
});
