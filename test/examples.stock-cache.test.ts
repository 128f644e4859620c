import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const runExample = (backend: string) =>
  spawnSync(process.execPath, ["--import", "tsx", path.join(root, "examples/stock-cache.ts"), backend], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000
  })

describe("examples/stock-cache.ts", () => {
  for (const backend of ["duckdb", "sqlite"]) {
    it(`runs on ${backend} and answers repeats locally`, () => {
      const result = runExample(backend)
      assert.strictEqual(result.status, 0, result.stderr)
      const out = result.stdout
      assert.match(out, new RegExp(`stock cache on ${backend}`))
      assert.match(out, /Q1 2024 again\s+65 rows .* answered locally/)
      assert.match(
        out,
        /head \+ tail\)\s+108 rows .* fetched AAPL 2023-12-01 → 2023-12-31, AAPL 2024-04-01 → 2024-04-30/
      )
      assert.match(out, /the same weekend again\s+0 rows .* answered locally/)
      assert.match(out, /after invalidating Feb 10–20\s+65 rows .* fetched AAPL 2024-02-10 → 2024-02-20$/m)
      assert.match(out, /MarketApiError: symbol not listed/)
      assert.match(out, /as Arrow: 6 rows/)
    })
  }
})
