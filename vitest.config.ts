import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // The machine has 2 cores and the tests spawn workers of their own: run files two at a time.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // Load the built package natively (not through vite's transform), as a user's Node would.
    server: { deps: { external: [/\/dist\//] } },
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.test.json',
    },
  },
});
