import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

describe("examples/remote-file-caching.ts", () => {
  it("downloads once, revalidates by ETag (304), downloads again when the object changes", async () => {
    const dir = makeTempDir()
    try {
      const result = await runChild("examples/remote-file-caching.ts", [path.join(dir, "cache")])
      assert.strictEqual(result.code, 0, result.stderr)
      const lines = result.stdout.trim().split("\n")
      const rows = lines.slice(0, 6).map((l) => l.split(/\s{2,}/))
      assert.deepStrictEqual(rows.map((r) => [r[0], r[3]]), [
        ["datasets/train.bin", "downloaded"],
        ["models/config.json", "downloaded"],
        ["datasets/train.bin", "cache (304 Not Modified)"],
        ["models/config.json", "cache (304 Not Modified)"],
        ["models/config.json", "downloaded (changed)"],
        ["models/config.json", "cache (304 Not Modified)"]
      ])
      // same bytes from the cache as from the server; new bytes after the change
      assert.strictEqual(rows[0][2], rows[2][2])
      assert.strictEqual(rows[1][2], rows[3][2])
      assert.notStrictEqual(rows[3][2], rows[4][2])
      assert.strictEqual(rows[4][2], rows[5][2])
      assert.match(lines[6], /DownloadError: HTTP 404/)
      assert.strictEqual(
        lines[7].match(/200 \/datasets\/train\.bin/g)?.length,
        1,
        "the 2 MiB file crossed the wire once"
      )
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
