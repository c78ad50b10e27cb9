// The end-to-end suite (`make e2e`): one file at a time on one cluster, tests in order, long timeouts.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 900_000,
    pool: "forks",
    fileParallelism: false,
    reporters: ["default"],
  },
});
