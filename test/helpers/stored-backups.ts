import { createHash, randomUUID } from 'node:crypto';
import { MANIFEST_SUFFIX, type Manifest } from '../../src/manifests/schema.js';

/** A backup written straight to a target (no pipeline): its manifest and artifact, by key. */
export interface StoredFixture {
  name: string;
  manifestKey: string;
  artifactKey: string;
  manifest: Manifest;
  artifact: Buffer;
}

/** A valid manifest (version 2, one `files` step) for `artifact`, as Backer would write it. */
export function storedFixture(mandate: string, name: string, artifact: Buffer, createdAt: Date, target: { name: string; type: string }): StoredFixture {
  const digest = {
    size: artifact.length,
    md5: createHash('md5').update(artifact).digest('hex'),
    sha256: createHash('sha256').update(artifact).digest('hex'),
  };
  const artifactKey = `${mandate}/${name}.tar`;
  const manifest: Manifest = {
    manifest_version: 2,
    uuid: randomUUID(),
    name,
    mandate,
    backer_version: '0.0.0-test',
    created_at: createdAt.toISOString(),
    completed_at: new Date(createdAt.getTime() + 1000).toISOString(),
    source: { type: 'files', container: null, image: null, databases: [] },
    target,
    steps: [{ processor: 'source:files', mime: 'application/x-tar', ...digest }],
    artifact: { key: artifactKey, mime: 'application/x-tar', ...digest },
  };
  return { name, manifestKey: `${mandate}/${name}${MANIFEST_SUFFIX}`, artifactKey, manifest, artifact };
}

export function manifestBytes(fixture: StoredFixture): Buffer {
  return Buffer.from(`${JSON.stringify(fixture.manifest, null, 2)}\n`);
}
