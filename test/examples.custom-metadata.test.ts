import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

describe("examples/custom-metadata.ts", () => {
  it("queries typed rows and SQL, refuses an invalid row, drops rows with their entry", async () => {
    const dir = makeTempDir()
    try {
      const result = await runChild("examples/custom-metadata.ts", [path.join(dir, "cache")])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(result.stdout.trim().split("\n"), [
        "accuracy >= 0.9: exp_001 (xgboost, 0.94), exp_003 (xgboost, 0.91)",
        "by type (SQL): logistic=1/0.79 random_forest=1/0.88 xgboost=2/0.94",
        "invalid row: MetadataError (nothing stored)",
        "after invalidating exp_001: 3 rows"
      ])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
