import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/support/setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Vitest runs one file at a time on a 2-core machine (cores - 1); most files wait on child
    // processes, PostgreSQL or s3rver, so two at a time nearly halve the suite (measured: 11 min
    // with two workers beside a benchmark, against 1,062 s of summed test time).
    maxWorkers: 2,
    minWorkers: 1
  }
})
