import { defineConfig } from 'vitest/config';

// Two projects so that a developer can run the fast tests alone (`npm run test:fast`).
// "slow" tests run real packer builds and real VMs; they share two cores, so one file at a time.
const shared = { exclude: ['**/node_modules/**', '**/cdktf.out/**'] };

export default defineConfig({
  test: {
    reporters: ['default', './tools/summary-reporter.ts'],
    // Packer and Terraform would call HashiCorp's checkpoint service: no traffic leaves this machine.
    env: { CHECKPOINT_DISABLE: '1' },
    projects: [
      {
        test: {
          ...shared,
          name: 'fast',
          include: ['libs/**/*.test.ts', 'apps/**/*.test.ts', 'tools/**/*.test.ts', 'images/**/*.test.ts', 'e2e/**/*.test.ts'],
          exclude: [...shared.exclude, '**/*.slow.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          ...shared,
          name: 'slow',
          include: ['**/*.slow.test.ts'],
          fileParallelism: false,
          testTimeout: 45 * 60_000,
          hookTimeout: 45 * 60_000,
        },
      },
    ],
  },
});
