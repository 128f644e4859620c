// verify({ repair }) fixes what can be fixed and never deletes live data: an intact blob under a
// wrong recorded size is fixed, not removed, and the entry/byte counters are recomputed (every
// metadata backend); entries re-stored while it runs and blobs of puts whose rows are not yet
// committed are left alone; a blob that can never be read (a directory in its place, an invalid
// id in its row) is a broken entry — a miss for get, reported and repaired by verify.
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import type { EntryRecord } from "../src/metadata/service.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { pgDescribe, pgExec, pgScopedSchema, pgUrl } from "./support/postgres.js"
import { listFiles, tempDir } from "./support/tmp.js"

const manual = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

const withCache = <A, E>(config: Cache.CacheConfig, use: Effect.Effect<A, E, Cache.Cache>) =>
  Effect.scoped(Effect.provide(use, Cache.layer({ ...manual, ...config })))

const blobPaths = (directory: string) =>
  listFiles(path.join(directory, "blobs")).filter((f) => !path.basename(f).startsWith(".")).map((f) =>
    path.join(directory, "blobs", f)
  )

/**
 * Puts one inline and one blob value, lets `tamper` record wrong sizes (and wrong counters),
 * repairs, and checks both entries survive with their real sizes and exact counters.
 */
const sizeRepairScenario = (config: Cache.CacheConfig, tamper: (keys: ReadonlyArray<string>) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const large = incompressible(30_000)
    const keys = yield* withCache(
      config,
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        return [yield* cache.put({ k: "small" }, "small value"), yield* cache.put({ k: "large" }, large)]
      })
    )
    yield* tamper(keys)
    yield* withCache(
      config,
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const report = yield* cache.verify()
        assert.deepStrictEqual([...report.sizeMismatches].sort(), [...keys].sort())
        const repaired = yield* cache.verify({ repair: true })
        assert.strictEqual(repaired.repaired, 2)
        assert.deepStrictEqual(yield* cache.get({ k: "large" }), Option.some(large), "intact bytes are kept")
        assert.deepStrictEqual(yield* cache.get({ k: "small" }), Option.some("small value"))
        const clean = yield* cache.verify()
        assert.deepStrictEqual([clean.dangling, clean.sizeMismatches, clean.checksumMismatches], [[], [], []])
        const entries = yield* cache.list()
        const stats = yield* cache.stats()
        assert.strictEqual(stats.entries, 2)
        assert.strictEqual(stats.totalBytes, entries.reduce((n, e) => n + e.storedBytes, 0))
      })
    )
  })

describe("verify repair: wrong recorded sizes and counters", () => {
  it.scoped("SQLite: the size is taken from an intact blob and the counters are recomputed", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* sizeRepairScenario({ directory }, () =>
        Effect.sync(() => {
          const db = new Database(path.join(directory, "cacheness.db"))
          db.exec(`UPDATE cacheness_entries SET stored_bytes = stored_bytes + 7`)
          db.exec(`UPDATE cacheness_counters SET entries = -7, bytes = -1000`)
          db.close()
        }))
    }))

  it.scoped("JSON: the size is taken from intact bytes", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* sizeRepairScenario({ directory, metadataBackend: "json" }, () =>
        Effect.sync(() => {
          const file = path.join(directory, "cacheness.json")
          const text = fs.readFileSync(file, "utf8").replace(
            /"storedBytes":(\d+)/g,
            (_, n) => `"storedBytes":${Number(n) + 7}`
          )
          fs.writeFileSync(file, text)
        }))
    }))

  pgDescribe("PostgreSQL", () => {
    it.scoped("the size is taken from an intact blob and the counters are recomputed", () =>
      Effect.gen(function*() {
        const schema = yield* pgScopedSchema("verify_size")
        yield* sizeRepairScenario(
          { metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } },
          () =>
            Effect.promise(async () => {
              await pgExec(`UPDATE ${schema}.cacheness_entries SET stored_bytes = stored_bytes + 7`)
              await pgExec(`UPDATE ${schema}.cacheness_counters SET entries = -7, bytes = -1000`)
            })
        )
      }))
  })

  it.effect("memory: repairSize binds to the version examined and recount sums the rows", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStoreMemory.make()
      const record: EntryRecord = {
        key: "0123456789abcdef",
        namespace: "",
        description: null,
        format: "bytes",
        codec: "none",
        storedBytes: 10,
        rawBytes: 10,
        checksum: "c1",
        blobId: "0123456789abcdef-v1",
        inline: null,
        createdAt: 1,
        accessedAt: 1,
        expiresAt: null,
        hits: 0,
        params: null,
        metadata: null
      }
      yield* store.upsert(record)
      assert.isFalse(yield* store.repairSize!(record.key, "0123456789abcdef-v2", "c1", 12), "another version")
      assert.isFalse(yield* store.repairSize!(record.key, record.blobId, "c2", 12), "another checksum")
      assert.isTrue(yield* store.repairSize!(record.key, record.blobId, "c1", 12))
      const totals = yield* store.recount!
      assert.deepStrictEqual([totals.entries, totals.totalBytes], [1, 12])
      const removed = yield* store.remove({ keys: [record.key], checksum: "c1", blobId: "0123456789abcdef-v0" })
      assert.strictEqual(removed.length, 0, "a removal bound to another blob id leaves the row")
    }))

  it.scoped("the memory layer: repair leaves healthy entries and exact counters", () =>
    Effect.gen(function*() {
      yield* Effect.scoped(Effect.provide(
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: 1 }, incompressible(30_000))
          yield* cache.put({ k: 2 }, "small")
          const report = yield* cache.verify({ repair: true })
          assert.strictEqual(report.repaired, 0)
          const stats = yield* cache.stats()
          assert.strictEqual(stats.entries, 2)
        }),
        Cache.layerMemory(manual)
      ))
    }))
})

describe("verify repair under concurrent writes", () => {
  it.scoped("entries re-stored with identical bytes while repair runs are never removed", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(
        { directory, maxSize: null, defaultTtl: null },
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const values = Array.from({ length: 60 }, () => incompressible(20_000))
          yield* Effect.forEach(values, (v, i) => cache.put({ i }, v), { discard: true })
          let repaired = 0
          for (let round = 0; round < 5; round++) {
            const [report] = yield* Effect.all([
              cache.verify({ repair: true }),
              Effect.forEach(values, (v, i) => cache.put({ i }, v), { discard: true, concurrency: 4 })
            ], { concurrency: 2 })
            repaired += report.repaired
            assert.deepStrictEqual(
              [report.dangling, report.sizeMismatches, report.checksumMismatches],
              [[], [], []],
              `round ${round}`
            )
          }
          assert.strictEqual(repaired, 0, "no false repairs")
          for (let i = 0; i < values.length; i++) {
            assert.deepStrictEqual(yield* cache.get({ i }), Option.some(values[i]), `key ${i}`)
          }
        })
      )
    }))

  it.scoped("a young blob without a row is a put in flight: neither reported nor deleted; an old one is an orphan", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(
        { directory },
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ live: 1 }, incompressible(30_000))
          const shard = path.join(directory, "blobs", "ab", "cd")
          fs.mkdirSync(shard, { recursive: true })
          const young = path.join(shard, "abcd000000000000-inflight")
          fs.writeFileSync(young, "a put whose row waits for the write lock")
          const report = yield* cache.verify()
          assert.deepStrictEqual(report.orphans, [])
          assert.strictEqual((yield* cache.verify({ repair: true })).repaired, 0)
          assert.isTrue(fs.existsSync(young), "a blob of a put in flight is kept")
          const longAgo = new Date(Date.now() - 2 * 3600_000)
          fs.utimesSync(young, longAgo, longAgo)
          assert.deepStrictEqual((yield* cache.verify()).orphans, ["abcd000000000000-inflight"])
          assert.strictEqual((yield* cache.verify({ repair: true })).repaired, 1)
          assert.isFalse(fs.existsSync(young))
          assert.isTrue(yield* cache.has({ live: 1 }))
        })
      )
    }))
})

describe("permanent blob read errors are broken entries", () => {
  const scenario = (damage: (directory: string, key: string, blob: string) => void, repairs: number) =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const value = incompressible(30_000)
      yield* withCache(
        { directory },
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const broken = [yield* cache.put({ k: 1 }, value), yield* cache.put({ k: 2 }, value)]
          const blob = blobPaths(directory).find((f) => path.basename(f).startsWith(broken[0]!))!
          damage(directory, broken[0]!, blob)
          const keep = yield* cache.put({ k: "healthy" }, "inline value")
          // verify reports it (without aborting) and repair removes it
          const report = yield* cache.verify()
          assert.deepStrictEqual(report.dangling, [broken[0]])
          const repaired = yield* cache.verify({ repair: true })
          assert.strictEqual(repaired.repaired, repairs)
          assert.isFalse(yield* cache.has({ k: 1 }))
          assert.deepStrictEqual(yield* cache.get(keep), Option.some("inline value"))
          // get of another damaged entry: a miss that removes it, not an error forever
          const second = blobPaths(directory).find((f) => path.basename(f).startsWith(broken[1]!))!
          damage(directory, broken[1]!, second)
          assert.isTrue(Option.isNone(yield* cache.get({ k: 2 })))
          assert.isFalse(yield* cache.has({ k: 2 }), "the broken entry was removed")
          assert.isTrue(Option.isNone(yield* cache.get({ k: 2 })))
        })
      )
    })

  it.scoped("a directory in place of the blob file (EISDIR)", () =>
    scenario((_directory, _key, blob) => {
      fs.rmSync(blob)
      fs.mkdirSync(blob)
    }, 1))

  it.scoped("a file in place of the blob's shard directory (ENOTDIR)", () =>
    scenario((_directory, _key, blob) => {
      const shard = path.dirname(blob)
      fs.rmSync(shard, { recursive: true })
      fs.writeFileSync(shard, "not a directory")
    }, 1))

  it.scoped("an invalid blob id planted in the row", () =>
    scenario((directory, key) => {
      const db = new Database(path.join(directory, "cacheness.db"))
      db.prepare(`UPDATE cacheness_entries SET blob_id = '../../etc/passwd' WHERE key = ?`).run(key)
      db.close()
    }, 1))
})
