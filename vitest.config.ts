import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{core,jobs,cli,runner,operator}/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "dist/**", "**/fixtures/**", "test/e2e/**"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
    reporters: ["default"],
  },
});
