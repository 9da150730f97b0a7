// The `sentry:` config section and what the reporter does to an event before it leaves (pure logic;
// test/sentry.test.ts runs a real daemon against a Sentry-compatible endpoint).
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { SecretRegistry } from '../src/logging/logger.js';
import { monitorConfig, monitorSlug, scrubEvent } from '../src/sentry/reporter.js';

function problems(sentry: string): string[] {
  return parseConfigText(`sentry:\n${sentry}`, 'backer.yml', {}, '/etc/backer').problems.map((p) => `${p.where}: ${p.message}`);
}

describe('sentry config', () => {
  it('takes a DSN or a DSN file, with environment, release and crons', () => {
    expect(problems('  dsn: https://abc123@o1.ingest.sentry.io/42\n  environment: prod\n  release: r1\n  crons: true\n')).toEqual([]);
    expect(problems('  dsn_file: secrets/dsn\n')).toEqual([]);
  });

  it('wants exactly one of dsn and dsn_file, and a real DSN, never quoting it', () => {
    expect(problems('  crons: true\n').join('\n')).toMatch(/sentry: expected exactly one of dsn and dsn_file/);
    expect(problems('  dsn: https://k@h/1\n  dsn_file: f\n').join('\n')).toMatch(/expected exactly one of dsn and dsn_file/);
    const bad = problems('  dsn: https://o1.ingest.sentry.io/secretish-no-key-42\n').join('\n');
    expect(bad).toMatch(/sentry\.dsn: the DSN has no public key/);
    expect(bad).not.toContain('secretish');
    expect(problems('  dsn: https://key@o1.ingest.sentry.io/\n').join('\n')).toMatch(/no project id/);
    expect(problems('  dsn: https://k@h/1\n  tracing: true\n').join('\n')).toMatch(/tracing/);
  });
});

describe('events and check-ins', () => {
  it('drops request, user, breadcrumbs and extra, and replaces every secret, JSON-escaped ones too', () => {
    const secrets = new SecretRegistry();
    secrets.add('pa"ss\\word-1');
    secrets.add('plain-secret-2');
    const event = scrubEvent(
      {
        type: undefined,
        message: 'failed with pa"ss\\word-1 and plain-secret-2',
        tags: { mandate: 'shop' },
        request: { url: 'http://x/?token=plain-secret-2' },
        user: { id: 'root' },
        breadcrumbs: [{ message: 'argv' }],
        extra: { env: { AWS_SECRET_ACCESS_KEY: 'x' } },
      },
      secrets,
    );
    expect(event).toEqual({ message: 'failed with [REDACTED] and [REDACTED]', tags: { mandate: 'shop' } });
  });

  it('names a monitor after the mandate and takes its cron as the schedule (five fields, UTC)', () => {
    expect(monitorSlug('Shop.DB/main')).toBe('backer-shop-db-main');
    expect(monitorSlug('x'.repeat(80))).toHaveLength(50);
    expect(monitorConfig('0 3 * * *')).toMatchObject({ schedule: { type: 'crontab', value: '0 3 * * *' }, timezone: 'UTC' });
    expect(monitorConfig('30 0 3 * * *').schedule).toEqual({ type: 'crontab', value: '0 3 * * *' });
  });
});
