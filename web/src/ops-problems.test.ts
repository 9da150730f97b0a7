import { describe, expect, it } from 'vitest';
import { locate, problemRows } from './ops-problems';

describe('configuration problems', () => {
  it('locates a label problem, a config path problem and anything else', () => {
    expect(locate('container shop-db label backer.interval')).toEqual({ container: 'shop-db', key: 'backer.interval', file: null });
    expect(locate('/etc/backer/backer.yml: mandates.db.mysql.password')).toEqual({ container: null, key: 'mandates.db.mysql.password', file: '/etc/backer/backer.yml' });
    expect(locate('/etc/backer/backer.yml')).toEqual({ container: null, key: null, file: '/etc/backer/backer.yml' });
  });

  it("lists each problem once, with the mandate it skips and that mandate's container", () => {
    const label = { where: 'container shop-db label backer.interval', message: 'expected a cron expression' };
    const path = { where: '/c/backer.yml: mandates.db.mysql.password', message: 'environment variable X is not set in container pg' };
    const note = { where: '/c/backer.yml: mandates.other.container', message: 'container gone does not exist (yet)' };
    const rows = problemRows({
      mandates: [],
      skipped: [
        { name: 'shop-db', origin: 'labels', container: 'shop-db', problems: [label] },
        { name: 'db', origin: 'config', container: 'pg', problems: [path] },
      ],
      problems: [label, path, note],
      docker_error: null,
    });
    expect(rows).toEqual([
      { ...path, container: 'pg', key: 'mandates.db.mysql.password', file: '/c/backer.yml', skips: 'db' },
      { ...note, container: null, key: 'mandates.other.container', file: '/c/backer.yml', skips: null },
      { ...label, container: 'shop-db', key: 'backer.interval', file: null, skips: 'shop-db' },
    ]);
  });
});
