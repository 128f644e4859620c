import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

const example = async (name: string, directory: string) => {
  const result = await runChild(`examples/${name}.ts`, [directory])
  assert.strictEqual(result.code, 0, result.stderr)
  return result.stdout.trim().split("\n")
}

describe("examples of docs/INTEGRATIONS.md", () => {
  it("key-value-store.ts: types kept, SchemaStore, modify", async () => {
    const dir = makeTempDir()
    try {
      assert.deepStrictEqual(await example("key-value-store", path.join(dir, "c")), [
        "greeting hello",
        "avatar 4 bytes",
        "visits 3",
        "settings dark",
        "size 4"
      ])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it("persisted-cache.ts: the second process does no lookup; the failure comes back", async () => {
    const dir = makeTempDir()
    try {
      const first = await example("persisted-cache", path.join(dir, "c"))
      const second = await example("persisted-cache", path.join(dir, "c"))
      assert.deepStrictEqual(first, ["user user 1", "failure UserNotFound", "lookups 2"])
      assert.deepStrictEqual(second, ["user user 1", "failure UserNotFound", "lookups 0"])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)

  it("keyv.ts: namespaces, TTL, batches, iterator, clear of one namespace", async () => {
    const dir = makeTempDir()
    try {
      assert.deepStrictEqual(await example("keyv", path.join(dir, "c")), [
        "user Ada Lovelace",
        "session t-1",
        "many Alan Turing,",
        "users ada,alan,grace",
        "after clear true false",
        "entries 3"
      ])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
