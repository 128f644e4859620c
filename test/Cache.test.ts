import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import { cacheness } from "../src/index.js"
import * as Key from "../src/key/pathKey.js"
import { cacheSuite } from "../src/testing.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { runChild } from "./support/child.js"
import { listFiles, makeTempDir, tempDir } from "./support/tmp.js"

cacheSuite(
  "layer (SQLite + files)",
  (config) => Layer.unwrapScoped(Effect.map(tempDir, (directory) => Cache.layer({ ...config, directory })))
)
cacheSuite("layerMemory", (config) => Cache.layerMemory(config))

const withCache = <A, E>(directory: string, use: Effect.Effect<A, E, Cache.Cache>, config: Cache.CacheConfig = {}) =>
  Effect.scoped(Effect.provide(use, Cache.layer({ directory, ...config })))

const blobFiles = (directory: string) =>
  listFiles(path.join(directory, "blobs")).map((f) => path.join(directory, "blobs", f))

describe("Cache on the file system", () => {
  it.scoped("marks its directory with CACHEDIR.TAG and keeps small values inline", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(
        directory,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ small: 1 }, { a: 1 })
          yield* cache.put({ large: 1 }, incompressible(40_000))
        })
      )
      assert.match(
        fs.readFileSync(path.join(directory, "CACHEDIR.TAG"), "utf8"),
        /^Signature: 8a477f597d28d172789f06886806bc55/
      )
      assert.strictEqual(blobFiles(directory).length, 1, "only the large value is a blob")
    }))

  for (
    const [name, damage] of [
      ["flipped bytes", (file: string) => {
        const bytes = fs.readFileSync(file)
        bytes[bytes.length >> 1] ^= 0xff
        fs.writeFileSync(file, bytes)
      }],
      ["a truncated blob", (file: string) => fs.truncateSync(file, 100)],
      ["a deleted blob", (file: string) => fs.rmSync(file)]
    ] as const
  ) {
    it.scoped(`${name}: a miss, the entry removed, no throw`, () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const value = incompressible(50_000)
        yield* withCache(
          directory,
          Effect.gen(function*() {
            const cache = yield* Cache.Cache
            yield* cache.put({ k: "victim" }, value)
            yield* cache.put({ k: "bystander" }, value)
            const [, bystanderKey] = [yield* cache.key({ k: "victim" }), yield* cache.key({ k: "bystander" })]
            const victim = blobFiles(directory).find((f) => !path.basename(f).startsWith(bystanderKey))!
            damage(victim)
            assert.isTrue(Option.isNone(yield* cache.get({ k: "victim" })))
            assert.isFalse(yield* cache.has({ k: "victim" }), "entry removed")
            assert.deepStrictEqual(yield* cache.get({ k: "bystander" }), Option.some(value))
            const report = yield* cache.verify()
            assert.deepStrictEqual([report.dangling, report.sizeMismatches, report.checksumMismatches], [[], [], []])
          })
        )
      }))
  }

  it.scoped("a corrupted inline value is a miss and removed", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(
        directory,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const key = yield* cache.put({ k: 1 }, { hello: "world" })
          const Database = (yield* Effect.promise(() => import("better-sqlite3"))).default
          const db = new Database(path.join(directory, "cacheness.db"))
          db.prepare("UPDATE cacheness_entries SET inline_value = zeroblob(length(inline_value)) WHERE key = ?").run(
            key
          )
          db.close()
          assert.isTrue(Option.isNone(yield* cache.get({ k: 1 })))
          assert.isFalse(yield* cache.has({ k: 1 }))
        })
      )
    }))

  it.scoped("verify reports and repairs orphans, dangling entries and mismatches", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(
        directory,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const keys = []
          for (let i = 0; i < 4; i++) keys.push(yield* cache.put({ i }, incompressible(30_000)))
          const files = blobFiles(directory)
          const fileOf = (key: string) => files.find((f) => path.basename(f).startsWith(key))!
          fs.rmSync(fileOf(keys[0]))
          fs.truncateSync(fileOf(keys[1]), 10)
          const b = fs.readFileSync(fileOf(keys[2]))
          b[b.length - 1] ^= 1
          fs.writeFileSync(fileOf(keys[2]), b)
          fs.mkdirSync(path.join(directory, "blobs", "ff", "ff"), { recursive: true })
          fs.writeFileSync(path.join(directory, "blobs", "ff", "ff", `${"f".repeat(16)}-orphan`), "left behind")
          // Older than the grace period of a put in flight (its row not committed yet).
          const longAgo = new Date(Date.now() - 2 * 3600_000)
          fs.utimesSync(path.join(directory, "blobs", "ff", "ff", `${"f".repeat(16)}-orphan`), longAgo, longAgo)
          // Temp files of interrupted writes: one abandoned two hours ago, one possibly in flight.
          const abandoned = path.join(directory, "blobs", "ff", "ff", `.${"f".repeat(16)}-v1.0123abcd.tmp`)
          const inFlight = path.join(directory, "blobs", "ff", "ff", `.${"f".repeat(16)}-v2.4567cdef.tmp`)
          fs.writeFileSync(abandoned, "half a val")
          fs.writeFileSync(inFlight, "being writ")
          const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
          fs.utimesSync(abandoned, twoHoursAgo, twoHoursAgo)
          const progress: Array<number> = []
          const report = yield* cache.verify({ onProgress: (p) => progress.push(p.done) })
          assert.deepStrictEqual(report.dangling, [keys[0]])
          assert.deepStrictEqual(report.sizeMismatches, [keys[1]])
          assert.deepStrictEqual(report.checksumMismatches, [keys[2]])
          assert.deepStrictEqual(report.orphans, [`${"f".repeat(16)}-orphan`])
          assert.deepStrictEqual(report.staleTempFiles, [abandoned])
          assert.strictEqual(report.checked, 4)
          assert.strictEqual(report.repaired, 0)
          assert.deepStrictEqual(progress, [4])
          const repaired = yield* cache.verify({ repair: true })
          assert.strictEqual(repaired.repaired, 5)
          assert.isFalse(fs.existsSync(abandoned))
          assert.isTrue(fs.existsSync(inFlight), "a young temp file may be a write in flight")
          const clean = yield* cache.verify()
          assert.deepStrictEqual(clean, {
            checked: 1,
            orphans: [],
            dangling: [],
            sizeMismatches: [],
            checksumMismatches: [],
            staleTempFiles: [],
            repaired: 0
          })
          assert.isTrue(yield* cache.has({ i: 3 }))
        })
      )
    }))

  it.scopedLive("housekeeping removes temp files abandoned by interrupted writes, not young ones", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const shard = path.join(directory, "blobs", "ab", "cd")
      fs.mkdirSync(shard, { recursive: true })
      const abandoned = path.join(shard, `.abcd${"0".repeat(12)}-v1.0123abcd.tmp`)
      const young = path.join(shard, `.abcd${"0".repeat(12)}-v2.4567cdef.tmp`)
      fs.writeFileSync(abandoned, "half")
      fs.writeFileSync(young, "half")
      const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
      fs.utimesSync(abandoned, twoHoursAgo, twoHoursAgo)
      // Housekeeping runs when the cache opens (cleanupOnOpen, the default), in the background.
      yield* withCache(
        directory,
        Effect.gen(function*() {
          for (let i = 0; i < 100 && fs.existsSync(abandoned); i++) yield* Effect.sleep("50 millis")
        })
      )
      assert.isFalse(fs.existsSync(abandoned))
      assert.isTrue(fs.existsSync(young))
    }))

  it.scopedLive("housekeeping drops the fingerprints of hashed files that no longer exist", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const data = yield* tempDir
      const kept = path.join(data, "kept.csv")
      const gone = path.join(data, "gone.csv")
      const hourAgo = new Date(Date.now() - 3600_000)
      for (const file of [kept, gone]) {
        fs.writeFileSync(file, `rows of ${file}\n`)
        // Files changed within the last seconds get no fingerprint (their mtime may still move).
        fs.utimesSync(file, hourAgo, hourAgo)
      }
      const fingerprinted = () => {
        const db = new Database(path.join(directory, "cacheness.db"), { readonly: true })
        try {
          return db.prepare("SELECT path FROM cacheness_fingerprints ORDER BY path").pluck().all() as Array<string>
        } finally {
          db.close()
        }
      }
      yield* withCache(
        directory,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ input: Key.file(kept) }, 1)
          yield* cache.put({ input: Key.file(gone) }, 2)
        })
      )
      assert.deepStrictEqual(fingerprinted(), [gone, kept])
      fs.rmSync(gone)
      // Housekeeping runs when the cache opens (cleanupOnOpen, the default), in the background.
      yield* withCache(
        directory,
        Effect.gen(function*() {
          for (let i = 0; i < 100 && fingerprinted().length > 1; i++) yield* Effect.sleep("50 millis")
          assert.deepStrictEqual(
            yield* Effect.flatMap(Cache.Cache, (cache) => cache.get({ input: Key.file(kept) })),
            Option.some(1)
          )
        })
      )
      assert.deepStrictEqual(fingerprinted(), [kept])
    }))

  it.scoped("hits and misses persist and are shared by two caches on one directory", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const a = cacheness({ directory })
      const b = cacheness({ directory })
      yield* Effect.promise(async () => {
        await a.put({ k: 1 }, "one")
        assert.strictEqual(await b.get({ k: 1 }), "one")
        assert.strictEqual(await b.get({ k: 2 }), undefined)
        assert.strictEqual(await a.get({ k: 1 }), "one")
        await b.close() // flushes b's batched counts
        const stats = await a.stats()
        assert.strictEqual(stats.hits, 2)
        assert.strictEqual(stats.misses, 1)
        assert.strictEqual(stats.entries, 1)
        await a.close()
        const c = cacheness({ directory })
        assert.strictEqual((await c.stats()).hits, 2)
        await c.close()
      })
    }))

  it.scoped("a process never serves its in-memory copy after another process changed the entry", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const a = cacheness({ directory })
      const b = cacheness({ directory })
      yield* Effect.promise(async () => {
        await a.put({ k: 1 }, "a1")
        assert.strictEqual(await a.get({ k: 1 }), "a1")
        await b.put({ k: 1 }, "b2")
        assert.strictEqual(await a.get({ k: 1 }), "b2")
        await b.touch({ k: 1 }, 0)
        assert.strictEqual(await a.get({ k: 1 }), undefined)
        await a.put({ k: 2 }, "a2")
        await b.invalidate({ k: 2 })
        assert.strictEqual(await a.get({ k: 2 }), undefined)
        await a.put({ k: 3 }, "a3")
        await b.clear()
        assert.isFalse(await a.has({ k: 3 }))
        await a.close()
        await b.close()
      })
    }))

  it.scoped("bad input leaves the entry count and the files unchanged", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(
        directory,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: "keep" }, incompressible(30_000))
          const files = listFiles(directory).filter((f) => !f.startsWith("cacheness.db"))
          const entries = (yield* cache.stats()).entries
          class Model {
            fit() {}
          }
          assert.strictEqual((yield* Effect.flip(cache.put({ model: new Model() }, 1)))._tag, "KeyError")
          assert.strictEqual((yield* Effect.flip(cache.put({ k: "fn" }, () => 1)))._tag, "CodecError")
          assert.strictEqual(
            (yield* Effect.flip(cache.put({ k: "big-fn" }, [incompressible(30_000), () => 1])))._tag,
            "CodecError"
          )
          assert.strictEqual((yield* cache.stats()).entries, entries)
          assert.deepStrictEqual(listFiles(directory).filter((f) => !f.startsWith("cacheness.db")), files)
        })
      )
    }))

  it.scoped("layerConfig reads CACHENESS_* through Effect Config; a bad value names its field", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const env = (entries: Record<string, string>) =>
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))
      const stats = yield* Effect.scoped(Effect.provide(
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: 1 }, "v")
          const [entry] = yield* cache.list()
          assert.strictEqual(entry.expiresAt! - entry.createdAt, 3_600_000)
          return yield* cache.stats()
        }),
        Cache.layerConfig({ maxSize: "1 GB" })
      )).pipe(env({ CACHENESS_DIR: directory, CACHENESS_DEFAULT_TTL: "1 hour", CACHENESS_MAX_SIZE: "none" }))
      assert.strictEqual(stats.directory, directory)
      assert.strictEqual(stats.maxSize, null)
      assert.strictEqual(stats.backend, "sqlite")
      const memory = yield* Effect.scoped(
        Effect.provide(Effect.flatMap(Cache.Cache, (c) => c.stats()), Cache.layerConfig())
      )
        .pipe(env({ CACHENESS_METADATA_BACKEND: "memory", CACHENESS_MAX_SIZE: "2 MB" }))
      assert.strictEqual(memory.backend, "memory")
      assert.strictEqual(memory.maxSize, 2 * 1024 * 1024)
      const error = yield* Effect.flip(Effect.scoped(Effect.provide(Cache.Cache, Cache.layerConfig())))
        .pipe(env({ CACHENESS_DIR: directory, CACHENESS_MAX_SIZE: "lots" }))
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, "maxSize")
    }))

  it.live(
    "4 processes × 1,000 keys into one directory: nothing lost, nothing corrupt",
    () =>
      Effect.promise(async () => {
        const directory = makeTempDir()
        try {
          const workers = 4
          const results = await Promise.all(
            Array.from(
              { length: workers },
              (_, id) => runChild("test/support/writerReader.ts", [directory, String(id), String(workers), "1000"])
            )
          )
          for (const r of results) {
            assert.strictEqual(r.code, 0, r.stderr)
            assert.deepStrictEqual(JSON.parse(r.stdout), { found: 4_000, wrong: 0 })
          }
          const cache = cacheness({ directory })
          assert.strictEqual((await cache.stats()).entries, 4_000)
          const report = await cache.verify()
          assert.deepStrictEqual([report.orphans, report.dangling, report.sizeMismatches, report.checksumMismatches], [
            [],
            [],
            [],
            []
          ])
          await cache.close()
        } finally {
          fs.rmSync(directory, { recursive: true, force: true })
        }
      }),
    120_000
  )
})
