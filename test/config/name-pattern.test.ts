import { describe, expect, it } from 'vitest';
import { checkNamePattern, formatNameDate, renderName } from '../../src/config/name-pattern.js';

const values = { date: new Date('2026-11-24T22:30:05.123Z'), container: 'shop-db', mandate: 'shop', uuid: '0b7c6f2e-1d7a-4c43-9a57-3f0c2d1e8b90' };

describe('renderName', () => {
  it('renders the date in UTC without colons or milliseconds', () => {
    expect(formatNameDate(values.date)).toBe('2026-11-24T22-30-05Z');
    expect(renderName('<DATE>-<CONTAINER_NAME>', values)).toBe('2026-11-24T22-30-05Z-shop-db');
  });

  it('fills every placeholder, repeatedly', () => {
    expect(renderName('<MANDATE>_<CONTAINER_NAME>_<UUID>_<DATE>_<MANDATE>', values)).toBe(
      'shop_shop-db_0b7c6f2e-1d7a-4c43-9a57-3f0c2d1e8b90_2026-11-24T22-30-05Z_shop',
    );
  });

  it('falls back to the mandate name without a container', () => {
    expect(renderName('<DATE>-<CONTAINER_NAME>', { ...values, container: null })).toBe('2026-11-24T22-30-05Z-shop');
  });
});

describe('checkNamePattern', () => {
  it('accepts the defaults and safe literals', () => {
    expect(checkNamePattern('<DATE>-<CONTAINER_NAME>', true)).toBeNull();
    expect(checkNamePattern('<DATE>-<MANDATE>', false)).toBeNull();
    expect(checkNamePattern('db_<UUID>.v2', false)).toBeNull();
  });

  it('says what is wrong', () => {
    expect(checkNamePattern('<DATE>-<HOST>', true)).toBe('unknown placeholder <HOST>; known: <DATE>, <CONTAINER_NAME>, <MANDATE>, <UUID>');
    expect(checkNamePattern('backups/<DATE>', true)).toBe(
      'expected only letters, digits, "_", "." and "-" besides the placeholders <DATE>, <CONTAINER_NAME>, <MANDATE>, <UUID>; received "backups/<DATE>"',
    );
    expect(checkNamePattern('.<DATE>', true)).toBe('must not start with "." or "-" (hidden files, command-line options)');
    expect(checkNamePattern('<CONTAINER_NAME>', true)).toBe('must contain <DATE> or <UUID>, otherwise every backup gets the same name');
    expect(checkNamePattern('<DATE>-<CONTAINER_NAME>', false)).toBe('uses <CONTAINER_NAME> but this mandate has no container; use <MANDATE>');
  });
});
