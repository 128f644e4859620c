import { assert, describe, it } from "@effect/vitest"
import { runChild } from "./support/child.js"

// What a process imports but never uses stays in its heap (and native libraries in its memory):
// every full garbage collection marks it again.
describe("lazy imports", () => {
  it("importing cacheness loads no DuckDB; the first DuckDB backend loads it and works", async () => {
    const { code, stderr, stdout } = await runChild("test/support/lazyImportsChild.ts", [])
    assert.strictEqual(code, 0, stderr)
    const report = JSON.parse(stdout.trim().split("\n").pop()!)
    assert.deepStrictEqual(report, { atImport: false, afterOpen: true, answer: 42 })
  }, 60_000)
})
