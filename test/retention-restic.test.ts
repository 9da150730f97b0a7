/**
 * Oracle: Backer's GFS policy (src/retention/gfs.ts) against Debian's restic. One restic
 * repository holds snapshots at generated timestamps over two years (UTC); for every policy,
 * `restic forget --dry-run --json` decides on the same timestamps and the kept sets must be equal.
 *
 * Debian ships restic 0.14, which lacks the "keep the oldest when a rule has buckets left" step
 * (restic ≥ 0.16, Backer's default): the plain function (`keepOldest: false`) must equal restic's
 * kept set, and the default must equal it plus the oldest snapshot exactly when restic's own
 * counters (printed with --json) say a rule still had buckets left.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyGfs, withinMs, type RetentionRules } from '../src/retention/gfs.js';
import { mulberry32 } from './helpers/random.js';
import { addSnapshots } from './retention-restic-repo.js';

const exec = promisify(execFile);
let dir = '';
let env: NodeJS.ProcessEnv = {};


const NEWEST = Date.UTC(2026, 4, 31, 12, 0, 0); // 2026-05-31 12:00
const DAY = 86_400_000;
const HOUR = 3_600_000;
const OLDEST = Date.UTC(2024, 5, 3, 8, 0, 0);
const PASSWORD = 'oracle-password';

/**
 * ~300 irregular timestamps over two years: several a day for two weeks (two within one hour),
 * most days for four months, then gaps of days to weeks; plus edges: ISO weeks around New Year,
 * month ends, and exactly 30 days, 14 days, 36 hours and 365 days before the newest, with a second
 * after the last two (keep_within's bound is exclusive).
 */
function history(): number[] {
  const rand = mulberry32(20240503);
  const times = new Set<number>([
    NEWEST,
    NEWEST - 20 * 60_000,
    Date.UTC(2026, 4, 1, 12, 0, 0), // exactly 30d before the newest
    Date.UTC(2026, 4, 1, 12, 0, 1),
    NEWEST - 14 * DAY,
    NEWEST - 36 * HOUR,
    NEWEST - 36 * HOUR + 1000,
    NEWEST - 365 * DAY,
    NEWEST - 365 * DAY + 1000,
    Date.UTC(2026, 4, 30, 12, 0, 0),
    Date.UTC(2025, 11, 28, 23, 0, 0), // Sunday, 2025-W52
    Date.UTC(2025, 11, 29, 1, 0, 0), // Monday, 2026-W01
    Date.UTC(2026, 0, 1, 0, 30, 0),
    Date.UTC(2024, 11, 29, 22, 0, 0), // Sunday, 2024-W52
    Date.UTC(2024, 11, 30, 2, 0, 0), // Monday, 2025-W01
    Date.UTC(2025, 0, 31, 23, 59, 59),
    OLDEST,
  ]);
  for (let d = 1; d <= 14; d++) for (let k = 0; k < 4; k++) times.add(NEWEST - d * DAY - Math.floor(rand() * 20) * 3_600_000 - k * 7_000);
  for (let d = 15; d <= 130; d++) if (rand() < 0.75) times.add(NEWEST - d * DAY - Math.floor(rand() * 86_400) * 1000);
  for (let t = NEWEST - 130 * DAY; t > OLDEST + 10 * DAY; ) {
    t -= Math.floor((0.5 + rand() * (rand() < 0.1 ? 30 : 8)) * DAY);
    times.add(Math.floor(t / 1000) * 1000);
  }
  return [...times].filter((t) => t >= OLDEST).sort((a, b) => b - a);
}

const TIMES = history();

/** Policies: every rule alone, below and above the number of buckets, within variants, combinations. */
function policies(): RetentionRules[] {
  const out: RetentionRules[] = [];
  for (const n of [1, 3, 7, 40, 1000]) out.push({ keep_last: n }, { keep_hourly: n }, { keep_daily: n }, { keep_weekly: n }, { keep_monthly: n }, { keep_yearly: n });
  // Backer's durations (src/config/duration.ts): hours, days and weeks only, no months or years.
  for (const w of ['1h', '36h', '1d', '30d', '2w', '10d5h', '365d', '425d', '1096d']) out.push({ keep_within: w });
  out.push(
    { keep_last: 3, keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: 3 },
    { keep_daily: 14, keep_weekly: 8, keep_monthly: 24 },
    { keep_hourly: 24, keep_daily: 7 },
    { keep_last: 2, keep_within: '30d' },
    { keep_weekly: 52, keep_within: '2w' },
    { keep_monthly: 6, keep_yearly: 10, keep_within: '10d' },
    { keep_daily: 3, keep_weekly: 3, keep_monthly: 3, keep_yearly: 3, keep_within: '365d' },
    { keep_last: 1, keep_hourly: 1, keep_daily: 1, keep_weekly: 1, keep_monthly: 1, keep_yearly: 1 },
  );
  return out;
}

/**
 * restic's `--keep-within` for Backer's duration: whole days and hours (`2w` → `14d`, `36h` →
 * `1d12h`). restic applies them with Go's AddDate in UTC, which over days is a fixed 24 h each:
 * the same cutoff as Backer's `newest - ms`.
 */
function resticWithin(rules: RetentionRules): string {
  const ms = withinMs(rules) ?? 0;
  if (ms % HOUR !== 0) throw new Error(`${String(rules.keep_within)} is no whole number of hours: restic cannot say it`);
  const days = Math.floor(ms / DAY);
  const hours = (ms % DAY) / HOUR;
  return `${days > 0 ? `${days}d` : ''}${hours > 0 ? `${hours}h` : ''}`;
}

/** restic's flags for a policy. */
function resticFlags(rules: RetentionRules): string[] {
  const flags: string[] = [];
  const names = { keep_last: 'last', keep_hourly: 'hourly', keep_daily: 'daily', keep_weekly: 'weekly', keep_monthly: 'monthly', keep_yearly: 'yearly' } as const;
  for (const [rule, flag] of Object.entries(names)) {
    const n = rules[rule as keyof typeof names];
    if (n !== undefined) flags.push(`--keep-${flag}`, String(n));
  }
  if (rules.keep_within !== undefined) flags.push('--keep-within', resticWithin(rules));
  return flags;
}

const resticTime = (t: number): string => new Date(t).toISOString().slice(0, 19).replace('T', ' ');

async function restic(args: string[]): Promise<string> {
  const { stdout } = await exec('restic', ['--no-cache', ...args], { env, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Runs `work` over items, `limit` at a time (restic forget takes about half a second, most of it the key derivation). */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const worker = async (): Promise<void> => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

interface ForgetGroup {
  keep: { time: string }[] | null;
  reasons: { snapshot: { time: string }; counters: Record<string, number> }[] | null;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'retention-restic-'));
  await mkdir(join(dir, 'data'));
  await writeFile(join(dir, 'data', 'f'), 'tiny');
  await writeFile(join(dir, 'password'), `${PASSWORD}\n`, { mode: 0o600 });
  // The password from a file, never argv; times are read and bucketed in UTC.
  env = { PATH: process.env.PATH, HOME: dir, TZ: 'UTC', RESTIC_REPOSITORY: join(dir, 'repo'), RESTIC_PASSWORD_FILE: join(dir, 'password') };
  const started = Date.now();
  await restic(['init', '-q', '--repository-version', '1']);
  // One real snapshot (the oldest), then the others as copies with their own times (see retention-restic-repo.ts).
  await restic(['backup', '-q', '--host', 'h', '--time', resticTime(OLDEST), join(dir, 'data')]);
  await addSnapshots(join(dir, 'repo'), PASSWORD, TIMES.filter((t) => t !== OLDEST));
  console.log(`restic oracle: ${TIMES.length} snapshots in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 120_000);

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('GFS retention against restic forget --dry-run', () => {
  it('has a two-year history in restic with the generated timestamps', async () => {
    const listed = JSON.parse(await restic(['snapshots', '--json'])) as { time: string }[];
    expect(listed.map((s) => Date.parse(s.time)).sort((a, b) => b - a)).toEqual(TIMES);
    expect(TIMES.length).toBeGreaterThanOrEqual(250);
    expect((TIMES[0] ?? 0) - (TIMES[TIMES.length - 1] ?? 0)).toBeGreaterThan(700 * DAY);
  });

  it('keeps the same snapshots as restic for at least 30 policies (and the oldest as restic >= 0.16)', async () => {
    const all = policies();
    expect(all.length).toBeGreaterThanOrEqual(30);
    const items = TIMES.map((time) => ({ time, id: String(time) }));
    const mismatches: string[] = [];
    let removing = 0;
    let oldestAdded = 0;
    await pool(all, 2, async (rules) => {
      const [group] = JSON.parse(await restic(['forget', '--no-lock', '--dry-run', '--json', '--host', 'h', ...resticFlags(rules)])) as ForgetGroup[];
      const keptByRestic = (group?.keep ?? []).map((s) => Date.parse(s.time)).sort((a, b) => b - a);
      const plain = applyGfs(items, rules, { keepOldest: false }).filter((d) => d.keep).map((d) => d.item.time);
      if (JSON.stringify(plain) !== JSON.stringify(keptByRestic)) mismatches.push(`${JSON.stringify(rules)}: restic ${keptByRestic.length}, ours ${plain.length}`);
      // restic 0.14's counters after the last kept snapshot: buckets left → restic >= 0.16 keeps the oldest too.
      const counters = group?.reasons?.[group.reasons.length - 1]?.counters ?? {};
      const oldest = TIMES[TIMES.length - 1] ?? 0;
      const left = Object.values(counters).some((n) => n > 0);
      const expected = left && !keptByRestic.includes(oldest) ? [...keptByRestic, oldest] : keptByRestic;
      if (keptByRestic.length < TIMES.length) removing += 1;
      if (expected !== keptByRestic) oldestAdded += 1;
      const withOldest = applyGfs(items, rules).filter((d) => d.keep).map((d) => d.item.time);
      if (JSON.stringify(withOldest) !== JSON.stringify(expected)) mismatches.push(`${JSON.stringify(rules)} (oldest): expected ${expected.length}, ours ${withOldest.length}`);
    });
    expect(mismatches).toEqual([]);
    // Not vacuous: most policies remove snapshots, and several hit the keep-the-oldest step.
    expect(removing).toBeGreaterThanOrEqual(30);
    expect(oldestAdded).toBeGreaterThanOrEqual(3);
    // The exclusive bound is exercised: 36h keeps the backup a second inside it, not the one on it.
    const within36 = applyGfs(items, { keep_within: '36h' }).filter((d) => d.keep).map((d) => d.item.time);
    expect(within36).toContain(NEWEST - 36 * HOUR + 1000);
    expect(within36).not.toContain(NEWEST - 36 * HOUR);
  }, 180_000);
});
