import type { Command } from 'commander';
import type { GlobalOptions } from '../context.js';
import type { JobsListOptions } from './jobs.js';

// Imported when the command runs (see main.ts).
const jobsModule = () => import('./jobs.js');

/** main.ts's wrapper that turns a command's result or error into the exit code. */
export type Runner = <O extends GlobalOptions>(action: (options: O) => Promise<number>) => (...args: unknown[]) => Promise<void>;

/** `backer jobs list|show|cancel`, `backer queue stats` and `backer mandates show`: all through the daemon's API. */
export function registerOperationCommands(program: Command, mandates: Command, run: Runner): void {
  const jobs = program.command('jobs').description("the running daemon's jobs (kept across restarts), their history, and cancelling one");
  jobs
    .command('list')
    .description('jobs, newest first')
    .option('--state <state>', 'only jobs in this state: queued | running | succeeded | failed | cancelled | interrupted')
    .option('--mandate <name>', 'only this mandate')
    .option('--kind <kind>', 'only this kind: backup | restore | verify | drill')
    .option('--limit <n>', 'at most N jobs (1-500)', '50')
    .option('--offset <n>', 'skip the newest N matching jobs', '0')
    .action(run<JobsListOptions>(async (o) => (await jobsModule()).jobsListCommand(o)));
  const show = jobs
    .command('show')
    .description("a job's fields and its history: each attempt's start and end, retries, interruptions")
    .argument('<id>', 'job id')
    .action(run(async (o) => (await jobsModule()).jobsShowCommand(show.args[0] ?? '', o)));
  const cancel = jobs
    .command('cancel')
    .description('cancel a queued job, or abort a running one')
    .argument('<id>', 'job id')
    .action(run(async (o) => (await jobsModule()).jobsCancelCommand(cancel.args[0] ?? '', o)));

  program
    .command('queue')
    .description("the running daemon's job queue")
    .command('stats')
    .description('running and waiting jobs, wait time p50/p95, failures in the last 24 h, overloaded mandates')
    .action(run(async (o) => (await import('./queue.js')).queueStatsCommand(o)));

  const mandate = mandates
    .command('show')
    .description('one mandate: its settings, next run and verification, stats and recent jobs')
    .argument('<name>', 'mandate name')
    .action(run(async (o) => (await import('./mandate-show.js')).mandatesShowCommand(mandate.args[0] ?? '', o)));
}
