import { readdir, readFile } from 'node:fs/promises';

/** The argv of every process on the host (containers' processes included: same kernel). */
export async function allCommandLines(): Promise<{ pid: number; argv: string }[]> {
  const out: { pid: number; argv: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (argv) out.push({ pid: Number(entry), argv: argv.split('\0').join(' ') });
  }
  return out;
}

/** Samples every process's argv until `stop` resolves. */
export async function sampleCommandLines(stop: Promise<unknown>, everyMs = 10): Promise<string[]> {
  const seen = new Set<string>();
  let done = false;
  void stop.finally(() => (done = true));
  while (!done) {
    for (const p of await allCommandLines()) seen.add(p.argv);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return [...seen];
}
