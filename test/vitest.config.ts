import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  test: {
    root,
    // Integration suites start real node processes; two cores are shared by everything.
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/compat/**'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Real Kafka clients (kcat, Python, KafkaJS, @platformatic/kafka) against a real cluster;
        // `--project compat` runs them alone.
        extends: true,
        test: {
          name: 'compat',
          include: ['test/compat/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
