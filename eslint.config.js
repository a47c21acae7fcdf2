// @ts-check
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native-shims/build/**', 'bench/work/**', 'coverage/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'bench/*.mjs', 'bin/*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'use a string-literal union instead of an enum' }],
    },
  },
  {
    // src/core is pure logic: no I/O of any kind may be imported there.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'src/core does no I/O: no node:* modules' },
            { group: ['fs', 'fs/*', 'path', 'os', 'child_process', 'net', 'http', 'https', 'crypto', 'stream', 'worker_threads', 'process'], message: 'src/core does no I/O' },
            { group: ['better-sqlite3', 'ssh2', '@parcel/watcher', 'xxhash-wasm', 'p-queue'], message: 'src/core does no I/O' },
            { group: ['../*'], message: 'src/core imports nothing outside src/core' },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'process', 'require', 'Buffer', 'fetch', 'setTimeout', 'setInterval'],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
