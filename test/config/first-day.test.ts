import { describe, expect, it } from 'vitest';
import { notABoolean, parseBoolean } from '../../src/config/boolean.js';
import { MAX_SOCKET_PATH_BYTES, parseConfigText } from '../../src/config/load.js';
import { checkNameLength, MAX_NAME_BYTES } from '../../src/config/name-pattern.js';
import { invalidRefsFrom } from '../../src/config/problems.js';

describe('parseBoolean', () => {
  it('accepts true/false, yes/no, on/off, 1/0 in any case', () => {
    for (const word of ['true', 'TRUE', 'True', 'yes', 'YES', 'on', 'On', '1', ' true ']) expect(parseBoolean(word), word).toBe(true);
    for (const word of ['false', 'FALSE', 'no', 'No', 'off', 'OFF', '0']) expect(parseBoolean(word), word).toBe(false);
  });

  it('refuses anything else, with a message naming the value', () => {
    for (const word of ['maybe', '', 'y', 'n', '2', 'truee', '01']) expect(parseBoolean(word), word).toBeUndefined();
    expect(notABoolean('maybe')).toBe('expected true or false (also yes/no, on/off, 1/0), received "maybe"');
  });
});

describe('checkNameLength', () => {
  it('measures the rendered name with this mandate and container, at most 200 bytes', () => {
    expect(MAX_NAME_BYTES).toBe(200);
    // <DATE> renders 20 bytes, <UUID> 36.
    expect(checkNameLength(`<DATE>-${'a'.repeat(179)}`, { container: null, mandate: 'm' })).toBeNull();
    expect(checkNameLength(`<DATE>-${'a'.repeat(180)}`, { container: null, mandate: 'm' })).toMatch(/^renders names of 201 bytes .*at most 200 bytes/);
    expect(checkNameLength('<UUID>-<CONTAINER_NAME>', { container: 'c'.repeat(163), mandate: 'm' })).toBeNull();
    expect(checkNameLength('<UUID>-<CONTAINER_NAME>', { container: 'c'.repeat(164), mandate: 'm' })).toMatch(/201 bytes/);
    expect(checkNameLength('<DATE>-<MANDATE>-<MANDATE>', { container: null, mandate: 'm'.repeat(90) })).toMatch(/202 bytes/);
  });
});

describe('invalidRefsFrom', () => {
  it('names the targets and middleware that have problems of their own', () => {
    const data = { targets: [{ name: 'ok' }, { name: 'bad', default: true }], middleware: [{ name: 'mw' }] };
    expect(invalidRefsFrom(data, [{ path: ['targets', 1, 'bucket'] }, { path: ['middleware', 0, 'level'] }, { path: ['mandates', 'x'] }])).toEqual({
      targets: ['bad'],
      middleware: ['mw'],
      defaultTarget: true,
    });
  });

  it('gives up on names when an entry has none or the list itself is wrong', () => {
    expect(invalidRefsFrom({ targets: [{ type: 'local' }] }, [{ path: ['targets', 0, 'name'] }])).toMatchObject({ targets: 'any', defaultTarget: true });
    expect(invalidRefsFrom({ middleware: 'gzip' }, [{ path: ['middleware'] }])).toMatchObject({ targets: [], middleware: 'any', defaultTarget: false });
  });
});

describe('parseConfigText', () => {
  const parse = (text: string): ReturnType<typeof parseConfigText> => parseConfigText(text, 'backer.yml', {}, '/etc/backer');

  it('does not call an invalid target missing or unconfigured', () => {
    const { problems } = parse('targets:\n  - name: only\n    type: local\nmandates:\n  a:\n    type: files\n  b:\n    type: files\n    target: only\n');
    expect(problems).toEqual([{ where: 'backer.yml: targets[0].path', message: 'required (expected a string)' }]);
  });

  it('accepts every boolean spelling of a static mandate\'s enabled', () => {
    const { problems } = parse('mandates:\n  a:\n    type: files\n    enabled: "off"\n    target: nowhere\n');
    expect(problems).toEqual([]);
  });

  it('refuses an api.socket longer than a unix socket path may be', () => {
    expect(MAX_SOCKET_PATH_BYTES).toBe(107);
    const fits = `/run/${'s'.repeat(MAX_SOCKET_PATH_BYTES - '/run/'.length)}`;
    expect(parse(`api:\n  socket: ${fits}\n`).problems).toEqual([]);
    expect(parse(`api:\n  socket: ${fits}x\n`).problems).toEqual([
      { where: 'backer.yml: api.socket', message: `the socket path ${fits}x is 108 bytes long; unix sockets allow at most 107: set a shorter api.socket` },
    ]);
    expect(parse(`data_dir: /${'d'.repeat(100)}\n`).problems[0]?.message).toMatch(/\(the default <data_dir>\/backer\.sock\) is 113 bytes long/);
  });
});
