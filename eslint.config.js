import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bin/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
    },
  },
  {
    // The daemon loads none of ICU's locale data: ~10 MiB of RSS (collation, time zones), and sorts
    // that follow the machine's locale. src/util/compare.ts, bench/README.md "Memory".
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-globals': ['error', { name: 'Intl', message: 'loads ICU data into the daemon: format without Intl' }],
      'no-restricted-properties': [
        'error',
        ...['localeCompare', 'toLocaleString', 'toLocaleDateString', 'toLocaleTimeString'].map((property) => ({ property, message: 'follows the locale and loads ICU data: use byCodeUnit (src/util/compare.ts) or a fixed format' })),
      ],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Cron'] Property[key.name='timezone']", message: "croner's timezone uses Intl.DateTimeFormat: use utcOffset: 0" }],
    },
  },
);
