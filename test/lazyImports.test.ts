import { assert, describe, it } from "@effect/vitest"
import { runChild } from "./support/child.js"

// Every full garbage collection marks the whole heap, and a table get's result makes V8 run one
// about every third get: what a process imports but never uses is marked again each time.
describe("lazy imports", () => {
  it("importing cacheness loads no DuckDB; the first DuckDB backend loads it and works", async () => {
    const { code, stderr, stdout } = await runChild("test/support/lazyImportsChild.ts", [])
    assert.strictEqual(code, 0, stderr)
    const report = JSON.parse(stdout.trim().split("\n").pop()!)
    assert.deepStrictEqual(report, { atImport: false, afterOpen: true, answer: 42 })
  }, 60_000)
})
