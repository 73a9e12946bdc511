// Runs only the pure engine tests, without the database globalSetup of the main config:
//   npx vitest run --config test/engine/vitest.engine.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/engine/**/*.test.ts'],
    testTimeout: 120_000,
  },
});
