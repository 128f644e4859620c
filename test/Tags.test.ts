// Tags beyond the contract suites: memoised results tagged statically and per call (Effect and
// Promise), a tag invalidation made by another process (the CLI, a real child) seen by this
// one's next read and memoised hit, the JSON file's tag index, and an older SQLite layout migrated.
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { Cache, cached, cacheness } from "../src/index.js"
import { runChild } from "./support/child.js"
import { makeTempDir, tempDir } from "./support/tmp.js"

describe("cached tags", () => {
  it.effect("static and per-call tags are stored with results; invalidateTags drops them and they recompute", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      let runs = 0
      const user = cached((id: number) => Effect.sync(() => (runs++, { id })), {
        name: "user",
        tags: (id: number) => [`user:${id}`, "users"]
      })
      const config = cached((name: string) => Effect.sync(() => (runs++, name.toUpperCase())), {
        name: "config",
        tags: ["config"]
      })
      yield* user(1)
      yield* user(2)
      yield* config("a")
      assert.strictEqual(runs, 3)
      assert.deepStrictEqual(
        (yield* cache.list({ tag: "users" })).map((e) => [...e.tags].sort()).sort(),
        [["user:1", "users"], ["user:2", "users"]]
      )
      assert.deepStrictEqual((yield* cache.list({ tag: "config" })).map((e) => e.namespace), ["cached:config"])
      assert.strictEqual(yield* cache.invalidateTags(["user:1"]), 1)
      yield* user(1)
      yield* user(2)
      assert.strictEqual(runs, 4, "only user(1) recomputed")
      assert.strictEqual(yield* cache.invalidateTags(["users", "config"]), 3)
      yield* user(2)
      yield* config("a")
      assert.strictEqual(runs, 6)
    }).pipe(Effect.provide(Cache.layerMemory())))

  it.effect("bad tags: a bad static list fails every call, a throwing tag function stores nothing", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      let runs = 0
      const bad = cached((n: number) => Effect.sync(() => (runs++, n)), { name: "bad", tags: [""] })
      const error = yield* Effect.flip(bad(1))
      assert.strictEqual(error._tag, "ConfigError")
      assert.match(error.message, /cached\.tags\[0\]/)
      assert.strictEqual(runs, 0, "fails before the function runs")
      const throwing = cached((n: number) => Effect.sync(() => (runs++, n)), {
        name: "throwing",
        tags: () => {
          throw new Error("no tags today")
        }
      })
      assert.strictEqual(yield* throwing(2), 2)
      assert.strictEqual((yield* cache.stats()).entries, 0)
      const wrong = cached((n: number) => Effect.sync(() => n), { name: "wrong", tags: () => [42 as any] })
      assert.strictEqual((yield* Effect.flip(wrong(3)))._tag, "ConfigError")
      assert.strictEqual((yield* cache.stats()).entries, 0)
    }).pipe(Effect.provide(Cache.layerMemory())))

  it("memoize takes tags too; the Promise twins of the batch and tag operations", async () => {
    const cache = cacheness({ metadataBackend: "memory", blobs: "memory" })
    try {
      let runs = 0
      const square = cache.memoize(async (n: number) => (runs++, n * n), {
        name: "square",
        tags: (n: number) => [n % 2 === 0 ? "even" : "odd"]
      })
      assert.deepStrictEqual(await Promise.all([1, 2, 3, 4].map((n) => square(n))), [1, 4, 9, 16])
      assert.strictEqual(await cache.invalidateTags(["even"]), 2)
      await square(2)
      await square(3)
      assert.strictEqual(runs, 5)
      const keys = await cache.putMany([[{ p: 1 }, "a", { tags: ["p"] }], [{ p: 2 }, "b"]])
      assert.deepStrictEqual(await cache.getMany([{ p: 2 }, { p: 9 }, keys[0]]), ["b", undefined, "a"])
      assert.strictEqual(await cache.invalidateTags(["p"]), 1)
      assert.strictEqual(await cache.invalidateMany([{ p: 2 }, { p: 1 }]), 1)
      const error = await cache.invalidateTags([""]).then(() => undefined, (e) => e)
      assert.strictEqual(error?._tag, "ConfigError")
      assert.match(error.message, /non-empty string/)
    } finally {
      await cache.close()
    }
  })
})

describe("tags across processes", () => {
  it.scopedLive(
    "`cacheness invalidate --tag` in another process is seen by this one's reads and memoised hits",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        let runs = 0
        const report = cached((day: string) => Effect.sync(() => (runs++, `report for ${day}`)), {
          name: "report",
          tags: (day: string) => ["reports", `day:${day}`]
        })
        const program = Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: "tagged" }, "x", { tags: ["reports"] })
          yield* cache.put({ k: "other" }, "y", { tags: ["other"] })
          yield* report("mon")
          yield* report("mon") // a memoised hit, held in memory
          assert.strictEqual(runs, 1)
          const child = yield* Effect.promise(() =>
            runChild("src/cli/main.ts", [
              "invalidate",
              "--tag",
              "reports",
              "--tag",
              "nothing",
              "--dir",
              directory,
              "--json"
            ])
          )
          assert.strictEqual(child.code, 0, child.stderr)
          assert.deepStrictEqual(JSON.parse(child.stdout), { removed: 2, tags: ["reports", "nothing"] })
          assert.isTrue(Option.isNone(yield* cache.get({ k: "tagged" })))
          assert.deepStrictEqual(yield* cache.get({ k: "other" }), Option.some("y"))
          assert.strictEqual(yield* report("mon"), "report for mon")
          assert.strictEqual(runs, 2, "the other process's invalidation reached the memo")
          const usage = yield* Effect.promise(() => runChild("src/cli/main.ts", ["invalidate", "--dir", directory]))
          assert.strictEqual(usage.code, 2)
          assert.include(usage.stderr, "--tag")
        })
        yield* program.pipe(Effect.provide(Cache.layer({ directory })))
      }),
    120_000
  )
})

describe("tag indexes on disk", () => {
  it.scopedLive("the JSON file keeps a tag index beside the entries", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const keys = yield* cache.putMany([[{ a: 1 }, 1, { tags: ["t", "u"] }], [{ a: 2 }, 2, { tags: ["t"] }]])
        const doc = JSON.parse(fs.readFileSync(path.join(directory, "cacheness.json"), "utf8"))
        assert.sameMembers(doc.tags.t, [...keys])
        assert.deepStrictEqual(doc.tags.u, [keys[0]])
        assert.strictEqual(yield* cache.invalidateTags(["u"]), 1)
        const after = JSON.parse(fs.readFileSync(path.join(directory, "cacheness.json"), "utf8"))
        assert.deepStrictEqual(after.tags, { t: [keys[1]] })
      }).pipe(Effect.provide(Cache.layer({ directory, metadataBackend: "json" })))
    }))

  it("an SQLite cache of the previous layout migrates: its entries stay, untagged, and take tags", async () => {
    const directory = makeTempDir()
    try {
      const first = cacheness({ directory })
      const key = await first.put({ old: 1 }, "kept")
      await first.close()
      // Back to layout 3: drop what migration 6 added.
      const db = new Database(path.join(directory, "cacheness.db"))
      db.exec(`DROP TRIGGER cacheness_entries_tags_ad; DROP TRIGGER cacheness_entries_tags_au;
        DROP TABLE cacheness_tags; ALTER TABLE cacheness_entries DROP COLUMN tags;
        DELETE FROM cacheness_migrations WHERE migration_id > 3`)
      db.close()
      const second = cacheness({ directory })
      try {
        assert.strictEqual(await second.get(key), "kept")
        assert.deepStrictEqual((await second.list()).map((e) => e.tags), [[]])
        await second.put({ old: 2 }, "new", { tags: ["fresh"] })
        assert.strictEqual(await second.invalidateTags(["fresh"]), 1)
        assert.strictEqual((await second.stats()).entries, 1)
      } finally {
        await second.close()
      }
    } finally {
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })
})
