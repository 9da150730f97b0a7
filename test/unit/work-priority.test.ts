/**
 * queue.nice when the system refuses to lower a priority (a sandbox whose seccomp filter denies
 * setpriority): the failure is reported once per program and reason, never thrown into the job.
 * setpriority is replaced here (no test may renice a process it does not own); the real
 * priorities are checked in test/middleware/suite.ts, test/unit/hash.test.ts and
 * test/work-priority.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

const refused = Object.assign(new Error('A system error occurred: uv_os_setpriority returned EPERM (operation not permitted)'), { info: { code: 'EPERM' } });
const gone = Object.assign(new Error('A system error occurred: uv_os_setpriority returned ESRCH (no such process)'), { info: { code: 'ESRCH' } });
const setPriority = vi.fn<(...args: unknown[]) => void>();

vi.mock('node:os', async (original) => ({ ...(await original<typeof import('node:os')>()), setPriority: (...args: unknown[]): void => setPriority(...args) }));

const { DEFAULT_WORK_NICE, lowerChildPriority, setWorkNice } = await import('../../src/util/work-priority.js');

afterEach(() => {
  setPriority.mockReset();
  setWorkNice(DEFAULT_WORK_NICE);
});

describe('lowerChildPriority', () => {
  it('reports a refused setpriority once per program and reason, and does not throw', () => {
    const reports: string[] = [];
    setWorkNice(10, (m) => reports.push(m));
    setPriority.mockImplementation(() => {
      throw refused;
    });
    expect(() => lowerChildPriority(4242, 'zstd')).not.toThrow();
    lowerChildPriority(4243, 'zstd');
    lowerChildPriority(4244, 'ccrypt');
    expect(reports).toEqual([
      `queue.nice: could not lower the priority of zstd, it runs at Backer's: ${refused.message}`,
      `queue.nice: could not lower the priority of ccrypt, it runs at Backer's: ${refused.message}`,
    ]);
  });

  it('says nothing of a child that already exited (ESRCH), and leaves priorities alone at queue.nice 0', () => {
    const reports: string[] = [];
    setWorkNice(10, (m) => reports.push(m));
    setPriority.mockImplementation(() => {
      throw gone;
    });
    lowerChildPriority(4245, 'age');
    expect(setPriority).toHaveBeenCalledTimes(1);
    setWorkNice(0, (m) => reports.push(m));
    lowerChildPriority(4246, 'age');
    expect(setPriority).toHaveBeenCalledTimes(1);
    expect(reports).toEqual([]);
  });
});
