import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

describe("examples/quickstart.ts", () => {
  it("computes once, then hits, and prints the stats", async () => {
    const dir = makeTempDir()
    try {
      const result = await runChild("examples/quickstart.ts", [path.join(dir, "cache")])
      assert.strictEqual(result.code, 0, result.stderr)
      const lines = result.stdout.trim().split("\n")
      assert.match(lines[0], /^miss\s+\d+\.\d+ ms/)
      assert.match(lines[1], /^hit\s+\d+\.\d+ ms/)
      const missMs = Number(lines[0].split(/\s+/)[1])
      assert.isAtLeast(missMs, 1_000, "the miss ran the slow computation")
      assert.match(lines[2], /^stats\s+entries=1 hits=1 misses=1/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
