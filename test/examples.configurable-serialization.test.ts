import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

describe("examples/configurable-serialization.ts", () => {
  it("shows codecs, the shuffle, schema round trips and a custom handler", async () => {
    const dir = makeTempDir()
    try {
      const result = await runChild("examples/configurable-serialization.ts", [path.join(dir, "caches")])
      assert.strictEqual(result.code, 0, result.stderr)
      const out = result.stdout
      const size = (label: string, value: string) => {
        const line = out.split("\n").find((l) => l.trimStart().startsWith(label))!
        const match = new RegExp(`${value} (\\d+) \\(([\\w@]+)/(\\w+)\\)`).exec(line)!
        return { bytes: Number(match[1]), format: match[2], codec: match[3] }
      }
      const lz4 = size("lz4 (default)", "records")
      assert.deepStrictEqual([lz4.format, lz4.codec], ["json", "lz4"])
      assert.isBelow(size("gzip level 9", "records").bytes, lz4.bytes)
      assert.isBelow(lz4.bytes, size("none", "records").bytes)
      assert.strictEqual(size("none", "signal").codec, "none")
      assert.strictEqual(size("lz4, arrays gzip", "signal").codec, "gzip")
      assert.strictEqual(size("lz4, arrays gzip", "records").codec, "lz4")
      const shuffled = size("shuffle true", "signal")
      const plain = size("shuffle false", "signal")
      assert.isBelow(shuffled.bytes, plain.bytes * 0.8)
      assert.strictEqual(plain.codec, "none", "unshuffled float64 does not compress, so it is stored raw")
      assert.match(out, /get with schema: a Model, 3 weights, trained 2024-05-01T00:00:00\.000Z/)
      assert.match(out, /newer schema \(needs "bias"\): a miss/)
      assert.match(out, /does not match: CodecError/)
      assert.match(out, /stored as format "point", \d+ bytes; read back: a Point \(3, 4\)/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
