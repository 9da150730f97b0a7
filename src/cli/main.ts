import { Command, CommanderError } from 'commander';
import { describeError } from '../errors.js';
import { BACKER_VERSION } from '../util/version.js';
import { backupCommand, type BackupOptions } from './commands/backup.js';
import { listCommand, showCommand, type ListOptions } from './commands/backups.js';
import { configCheckCommand } from './commands/config-check.js';
import { daemonCommand } from './commands/daemon.js';
import { demoCommand } from './commands/demo.js';
import type { GlobalOptions } from './context.js';
import { EXIT, EXIT_HELP, exitCodeFor } from './exit-codes.js';

// The AWS SDK warns on every process start that its releases after January 2027 need Node 22.
// Our lockfile pins the SDK, so the warning only clutters CLI output (the README states the Node
// requirement). Set the variable to "false" to see it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

type Action<O> = (options: O) => Promise<number>;

/** The only place that turns results and errors into exit codes. */
function run<O extends GlobalOptions>(action: Action<O>): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const options = command.optsWithGlobals<O>();
    try {
      process.exitCode = await action(options);
    } catch (err) {
      process.stderr.write(`backer: ${describeError(err)}\n`);
      process.exitCode = exitCodeFor(err);
    }
  };
}

const program = new Command('backer')
  .description('Backups for databases and volumes that run in Docker')
  .version(BACKER_VERSION)
  .option('-c, --config <file>', 'config file (default: $BACKER_CONFIG, else ./backer.yml)')
  .option('--demo', 'use the embedded demo config instead of a file')
  .option('--json', 'machine-readable output')
  .addHelpText('after', EXIT_HELP)
  .showHelpAfterError()
  .exitOverride();

program.command('daemon').description('run discovery, the scheduler, the job queue and the API socket until SIGTERM/SIGINT').action(run(daemonCommand));

program
  .command('demo')
  .description('run the daemon on the embedded demo config (a files mandate to ./backer-data/demo-backups, plus labelled containers)')
  .action(run(() => demoCommand()));

program
  .command('backup')
  .description('back up MANDATE now through the running daemon (or in this process with --once)')
  .argument('<mandate>', 'mandate name (the container name for labelled containers)')
  .option('--wait', 'follow the job; exit 0 only if it succeeded')
  .option('--once', 'run the backup in this process, without a daemon; exit 0/1')
  .action(run<BackupOptions & { mandate?: string }>((o) => backupCommand(program.commands.find((c) => c.name() === 'backup')?.args[0] ?? '', o)));

const backups = program.command('backups').description('list and inspect stored backups (reads the targets directly)');
backups
  .command('list')
  .description('list backups, newest first')
  .option('--mandate <name>', 'only this mandate')
  .option('--target <name>', 'only this target')
  .action(run<ListOptions>(listCommand));
backups
  .command('show')
  .description('print the manifest of a backup')
  .argument('<name|uuid>', 'backup name or uuid')
  .option('--target <name>', 'only this target')
  .action(run<ListOptions>((o) => showCommand(backups.commands.find((c) => c.name() === 'show')?.args[0] ?? '', o)));

program
  .command('config')
  .description('configuration tools')
  .command('check')
  .description("validate the config file and every discovered container's labels")
  .action(run(configCheckCommand));

// Every command's --help ends with the exit codes.
const withExitHelp = (command: Command): void => {
  for (const sub of command.commands) {
    sub.addHelpText('after', EXIT_HELP);
    withExitHelp(sub);
  }
};
withExitHelp(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  } else {
    process.stderr.write(`backer: ${describeError(err)}\n`);
    process.exitCode = EXIT.FAILED;
  }
}
