/**
 * The README's command reference is tested against the CLI itself: every command and option that
 * `--help` shows is in the README's command block, and so is every exit code.
 */
import { describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.js';
import { readme } from './helpers/readme.js';

/** The command block of the "Command line" section. */
function commandBlock(): string {
  const section = readme.slice(readme.indexOf('## Command line'));
  return section.slice(section.indexOf('```'), section.indexOf('```', section.indexOf('```') + 3));
}

/** `  name [args]   description` lines under "Commands:" of a help text. */
function commands(help: string): string[] {
  const part = help.split(/^Commands:$/m)[1] ?? '';
  return [...part.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1] ?? '').filter((c) => c !== 'help');
}

function options(help: string): string[] {
  const part = (help.split(/^Options:$/m)[1] ?? '').split(/^Exit codes:$/m)[0] ?? '';
  return [...part.matchAll(/^ {2}(?:-[a-zA-Z], )?(--[a-z-]+)/gm)].map((m) => m[1] ?? '').filter((o) => o !== '--help');
}

describe('README command reference', () => {
  it('lists every command and subcommand with its options', async () => {
    const block = commandBlock();
    const top = await cli(['--help']);
    for (const command of commands(top.stdout)) {
      const help = await cli([command, '--help']);
      const subs = commands(help.stdout);
      if (subs.length === 0) {
        expect(block, `backer ${command}`).toContain(`backer ${command}`);
        for (const option of options(help.stdout)) expect(block, `backer ${command} ${option}`).toContain(option);
        continue;
      }
      for (const sub of subs) {
        expect(block, `backer ${command} ${sub}`).toContain(`backer ${command} ${sub}`);
        const subHelp = await cli([command, sub, '--help']);
        for (const option of options(subHelp.stdout)) expect(block, `backer ${command} ${sub} ${option}`).toContain(option);
      }
    }
  });

  it('documents every exit code the CLI prints', async () => {
    const help = (await cli(['--help'])).stdout;
    const codes = [...help.matchAll(/^ {2}(\d) {2}/gm)].map((m) => m[1] ?? '');
    expect(codes).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    for (const code of codes) expect(readme).toContain(`\`${code}\` `);
  });
});
