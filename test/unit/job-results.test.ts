/**
 * The API documents a job's result with the schemas of src/api/job-results.ts; the pipeline
 * returns its own types. Every value of the pipeline's types must be a value of the schemas, or
 * the document says something the daemon does not send: checked here at compile time (the
 * typecheck of the tests), and for real results in test/api-auth.test.ts and
 * test/restore-new.test.ts.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import type { backupResultSchema, jobResultSchema, restoreResultSchema, verifyResultSchema } from '../../src/api/job-results.js';
import type { BackupResult } from '../../src/pipeline/run-backup.js';
import type { RestoreResult } from '../../src/pipeline/run-restore.js';
import type { VerifyResult } from '../../src/pipeline/run-verify.js';
import type { JobResult } from '../../src/queue/types.js';

describe("the API's job result schemas", () => {
  it("hold every result the pipeline's types allow", () => {
    expectTypeOf<BackupResult>().toExtend<z.infer<typeof backupResultSchema>>();
    expectTypeOf<RestoreResult>().toExtend<z.infer<typeof restoreResultSchema>>();
    expectTypeOf<VerifyResult>().toExtend<z.infer<typeof verifyResultSchema>>();
  });

  it('cover every kind of result a job returns (a drill returns a verification)', () => {
    expectTypeOf<JobResult>().toExtend<z.infer<typeof jobResultSchema>>();
  });
});
