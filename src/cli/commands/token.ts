import { newToken } from '../../api/auth.js';
import { SCOPES, type Scope } from '../../api/scopes.js';
import { NAME_PATTERN } from '../../config/schema-kit.js';
import { BackerError } from '../../errors.js';
import { EXIT } from '../exit-codes.js';
import type { GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

export interface TokenCreateOptions extends GlobalOptions {
  scope?: string;
}

/**
 * `backer token create NAME --scope S`: a new random token, printed once, and the `api.tokens` entry
 * that holds only its SHA-256. Nothing is written: the config is the user's file.
 */
export function tokenCreateCommand(name: string, options: TokenCreateOptions): Promise<number> {
  if (!NAME_PATTERN.test(name)) {
    throw new BackerError('USAGE_INVALID', `token name ${JSON.stringify(name)}: expected letters, digits, "_", "." or "-" (starting with a letter or digit)`, { component: 'cli', details: { name } });
  }
  const scope = options.scope ?? '';
  if (!(SCOPES as readonly string[]).includes(scope)) {
    throw new BackerError('USAGE_INVALID', `--scope ${JSON.stringify(scope)}: expected one of ${SCOPES.join(', ')}`, { component: 'cli', details: { scope } });
  }
  const { token, sha256 } = newToken();
  const entry = { name, token_sha256: sha256, scope: scope as Scope };
  const yaml = `- { name: ${name}, token_sha256: ${sha256}, scope: ${scope} }`;
  if (options.json) {
    printJson({ ...entry, token, config_line: yaml });
    return Promise.resolve(EXIT.OK);
  }
  printLine(`token: ${token}`);
  printLine('(shown once: store it in a file for --token-file / BACKER_TOKEN_FILE; Backer keeps only its SHA-256)');
  printLine('');
  printLine('add under api.tokens in the config:');
  printLine(`  ${yaml}`);
  return Promise.resolve(EXIT.OK);
}
