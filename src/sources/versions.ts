/** `3.40.1 2022-12-28 …` → [3, 40, 1]. */
export function parseVersion(text: string, pattern: RegExp): [number, number, number] | null {
  const m = pattern.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export function versionAtLeast(version: readonly number[], minimum: readonly number[]): boolean {
  for (let i = 0; i < minimum.length; i++) {
    const a = version[i] ?? 0;
    const b = minimum[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}
