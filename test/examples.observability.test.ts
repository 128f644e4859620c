import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

describe("examples/observability.ts", () => {
  it("exports management spans and the cache metrics through OpenTelemetry", async () => {
    const dir = makeTempDir()
    try {
      const result = await runChild("examples/observability.ts", [path.join(dir, "cache")])
      assert.strictEqual(result.code, 0, result.stderr)
      const out = result.stdout
      for (const span of ["Cache.list", "Cache.verify", "Cache.prune", "Cache.stats", "example"]) {
        assert.match(out, new RegExp(`^span\\s+${span.replace(".", "\\.")}\\s+\\d+\\.\\d+ ms$`, "m"))
      }
      assert.notMatch(out, /^span\s+Cache\.get\b/m, "get is deliberately untraced")
      assert.match(out, /^stats\s+entries=0 hits=6 misses=6$/m)
      assert.match(out, /^metric\s+cacheness_hits\{\} 6$/m)
      assert.match(out, /^metric\s+cacheness_misses\{\} 6$/m)
      assert.match(out, /^metric\s+cacheness_evictions\{\} 6$/m)
      assert.match(out, /^metric\s+cacheness_operation_duration_ms\{operation=get\} count=12 /m)
      assert.match(out, /^metric\s+cacheness_operation_duration_ms\{operation=put\} count=6 /m)
      const written = Number(/^metric\s+cacheness_bytes_written\{\} (\d+)$/m.exec(out)?.[1])
      const read = Number(/^metric\s+cacheness_bytes_read\{\} (\d+)$/m.exec(out)?.[1])
      assert.isAbove(written, 0)
      assert.strictEqual(read, written, "each stored value was read back once")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
