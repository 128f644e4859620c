import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

describe("examples/ml-pipeline.ts", () => {
  it("runs each stage once per data content; a copy hits, an edit reruns everything", async () => {
    const dir = makeTempDir()
    try {
      const result = await runChild("examples/ml-pipeline.ts", [dir])
      assert.strictEqual(result.code, 0, result.stderr)
      const lines = result.stdout.trim().split("\n")
      const ran = lines.slice(0, 4).map((l) => l.split("ran: ")[1])
      assert.deepStrictEqual(ran, [
        "load, features, train",
        "nothing (all cached)",
        "nothing (all cached)",
        "load, features, train"
      ])
      const accuracy = lines.slice(0, 4).map((l) => Number(/accuracy (\d\.\d+)/.exec(l)![1]))
      assert.strictEqual(accuracy[1], accuracy[0], "the cached model is the trained one")
      assert.isAbove(accuracy[0], 0.8)
      assert.match(lines[4], /^cache: 6 entries \(arrow@4, ndarray, v8\), \d+ bytes stored/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
