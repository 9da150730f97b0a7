import picomatch from 'picomatch';

/**
 * Mandate name globs of `notifications[].mandates`, through picomatch: `*` (any run of
 * characters), `?` (one), `[a-z]` / `[!a-z]` (a class), `{a,b}` (alternatives), `\` escapes.
 * Names have no `/`, so `*` covers any name. An unbalanced `{` or `[` is refused rather than read
 * literally: it is almost always a typo in the config.
 */
export function compileNameGlob(glob: string): RegExp {
  const unescaped = glob.replace(/\\./g, '');
  for (const [open, close] of [['{', '}'], ['[', ']']] as const) {
    if (unescaped.split(open).length > unescaped.split(close).length) throw new Error(`unclosed "${open}" in ${JSON.stringify(glob)}`);
  }
  // The shell's negated class `[!a]` is picomatch's `[^a]` (picomatch reads `[!` as a literal `!`).
  return picomatch.makeRe(glob.replace(/(?<!\\)\[!/g, '[^'), { dot: true, strictBrackets: true });
}
