import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import * as MetadataStoreJson from "../src/metadata/json.js"
import { cacheSuite } from "../src/testing.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { runChild } from "./support/child.js"
import { pgDescribe, pgExec, pgScopedSchema, pgUrl } from "./support/postgres.js"
import { makeTempDir, tempDir } from "./support/tmp.js"

cacheSuite(
  "layer (JSON + files)",
  (config) =>
    Layer.unwrapScoped(
      Effect.map(tempDir, (directory) => Cache.layer({ ...config, directory, metadataBackend: "json" }))
    )
)

pgDescribe("Cache on PostgreSQL", () => {
  cacheSuite(
    "layer (PostgreSQL metadata + PostgreSQL blobs)",
    (config) =>
      Layer.unwrapScoped(
        Effect.map(pgScopedSchema("cache"), (schema) =>
          Cache.layer({ ...config, metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } }))
      )
  )

  it.scoped("lives entirely in PostgreSQL: no directory is created", () =>
    Effect.gen(function*() {
      const schema = yield* pgScopedSchema("nodir")
      const cwd = makeTempDir()
      const directory = path.join(cwd, "never")
      const stats = yield* Effect.scoped(Effect.provide(
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: "big" }, incompressible(100_000))
          yield* cache.put({ k: "small" }, 1)
          assert.strictEqual(
            (yield* cache.get({ k: "big" })).pipe(Option.map((v) => (v as string).length), Option.getOrThrow),
            100_000
          )
          return yield* cache.stats()
        }),
        Cache.layer({ directory, metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } })
      ))
      assert.strictEqual(stats.entries, 2)
      assert.strictEqual(stats.backend, "postgres")
      assert.strictEqual(stats.directory, null)
      assert.isFalse(fs.existsSync(directory))
      fs.rmSync(cwd, { recursive: true, force: true })
    }))

  it.scopedLive(
    "4 processes in separate working directories share one PostgreSQL cache: nothing lost",
    () =>
      Effect.gen(function*() {
        const schema = yield* pgScopedSchema("mp")
        const workers = 4
        const count = 60
        const sync = makeTempDir()
        const results = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: workers }, (_, id) => {
            const cwd = makeTempDir()
            return runChild(
              "test/support/pgWorker.ts",
              [sync, schema, String(id), String(workers), String(count), cwd],
              {
                CACHENESS_TEST_PG_URL: pgUrl
              }
            ).then((r) => ({ ...r, cwd }))
          }))
        )
        for (const r of results) {
          assert.strictEqual(r.code, 0, r.stderr)
          const report = JSON.parse(r.stdout)
          assert.deepStrictEqual(report, { found: workers * count, wrong: 0, localFiles: [] })
          fs.rmSync(r.cwd, { recursive: true, force: true })
        }
        fs.rmSync(sync, { recursive: true, force: true })
        const stats = yield* Effect.scoped(Effect.provide(
          Effect.flatMap(Cache.Cache, (cache) => cache.stats()),
          Cache.layer({ metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } })
        ))
        assert.strictEqual(stats.entries, workers * count)
        assert.strictEqual(stats.hits, workers * workers * count)
      }),
    120_000
  )

  it.scopedLive(
    "4 processes call the same memoised function at once: the lease makes it run once",
    () =>
      Effect.gen(function*() {
        const schema = yield* pgScopedSchema("lease")
        const sync = makeTempDir()
        const countFile = path.join(sync, "runs.txt")
        // Create the layout once, so the children race on the call, not on migrating.
        yield* Effect.scoped(
          Effect.provide(
            Effect.flatMap(Cache.Cache, (c) => c.stats()),
            Cache.layer({ metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } })
          )
        )
        const startAt = String(Date.now() + 8_000)
        const results = yield* Effect.promise(() =>
          Promise.all([0, 1, 2, 3].map(() => {
            const cwd = makeTempDir()
            return runChild("test/support/pgLeaseWorker.ts", [sync, schema, countFile, startAt, cwd], {
              CACHENESS_TEST_PG_URL: pgUrl
            })
          }))
        )
        for (const r of results) {
          assert.strictEqual(r.code, 0, r.stderr)
          assert.deepStrictEqual(JSON.parse(r.stdout.trim()), { answer: 42 })
        }
        assert.strictEqual(fs.readFileSync(countFile, "utf8").trim().split("\n").length, 1)
        fs.rmSync(sync, { recursive: true, force: true })
      }),
    120_000
  )

  it.scoped("a schema written by a newer release is refused with a clear MetadataError", () =>
    Effect.gen(function*() {
      const schema = yield* pgScopedSchema("newer")
      const layer = Cache.layer({ metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } })
      yield* Effect.scoped(Effect.provide(Cache.Cache, layer))
      yield* Effect.promise(() =>
        pgExec(`INSERT INTO ${schema}.cacheness_migrations (migration_id, name) VALUES (99, 'future')`)
      )
      const error = yield* Effect.flip(Effect.scoped(Effect.provide(Cache.Cache, layer)))
      assert.strictEqual(error._tag, "MetadataError")
      assert.strictEqual((error as any).reason, "NewerLayout")
      assert.match(error.message, /layout 99; this release reads up to 8/)
    }))

  it.scoped("an older (empty) layout is migrated on open and recorded", () =>
    Effect.gen(function*() {
      const schema = yield* pgScopedSchema("older")
      // What a release before the entries table would have left: the schema and an empty ledger.
      yield* Effect.promise(() =>
        pgExec(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.cacheness_migrations (
        migration_id integer primary key, created_at timestamptz not null default now(), name text not null)`)
      )
      yield* Effect.scoped(Effect.provide(
        Effect.flatMap(Cache.Cache, (cache) => cache.put({ k: 1 }, 1)),
        Cache.layer({ metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } })
      ))
      const sql = yield* Effect.scoped(Effect.provide(
        Effect.flatMap(Cache.Cache, (cache) =>
          Effect.flatMap(cache.sql, (sql) =>
            sql.unsafe<{ id: number }>(`SELECT migration_id AS id FROM ${schema}.cacheness_migrations`))),
        Cache.layer({ metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } })
      ))
      assert.deepStrictEqual(
        sql.map((r) =>
          r.id
        ).sort((a, b) => a - b),
        [1, 2, 3, 4, 5, 6, 7, 8]
      )
    }))
})

describe("Cache on a JSON index", () => {
  const withCache = <A, E>(directory: string, use: Effect.Effect<A, E, Cache.Cache>) =>
    Effect.scoped(Effect.provide(use, Cache.layer({ directory, metadataBackend: "json" })))

  it.scoped("the index is one readable file; a corrupt one is moved aside and the cache starts empty", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(
        directory,
        Effect.flatMap(Cache.Cache, (cache) => cache.put({ k: 1 }, "one", { description: "first" }))
      )
      const file = path.join(directory, "cacheness.json")
      const text = fs.readFileSync(file, "utf8")
      assert.match(text, /"format": "cacheness-metadata", "layout": 2/)
      assert.match(text, /"description":"first"/)
      fs.writeFileSync(file, text.slice(0, text.length / 2))
      const after = yield* withCache(
        directory,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const miss = yield* cache.get({ k: 1 })
          yield* cache.put({ k: 2 }, "two")
          return { miss, stats: yield* cache.stats() }
        })
      )
      assert.isTrue(Option.isNone(after.miss))
      assert.strictEqual(after.stats.entries, 1)
      const aside = fs.readdirSync(directory).filter((f) => f.startsWith("cacheness.json.corrupt-"))
      assert.strictEqual(aside.length, 1)
      assert.strictEqual(fs.readFileSync(path.join(directory, aside[0]), "utf8"), text.slice(0, text.length / 2))
    }))

  it.scoped("a file written by a newer release is refused and left untouched", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const file = path.join(directory, "cacheness.json")
      const future = JSON.stringify({
        format: "cacheness-metadata",
        layout: 9,
        counters: { hits: 0, misses: 0 },
        tables: {},
        entries: {}
      })
      fs.writeFileSync(file, future)
      const error = yield* Effect.flip(withCache(directory, Cache.Cache))
      assert.strictEqual((error as any).reason, "NewerLayout")
      assert.strictEqual(fs.readFileSync(file, "utf8"), future)
    }))

  it.live("4 concurrent writer processes lose no update", () =>
    Effect.gen(function*() {
      const directory = makeTempDir()
      const workers = 4
      const count = 40
      const results = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: workers }, (_, id) =>
          runChild("test/support/jsonWorker.ts", [directory, String(id), String(count)])))
      )
      for (const r of results) {
        assert.strictEqual(r.code, 0, r.stderr)
      }
      const found = yield* withCache(
        directory,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          let n = 0
          for (let w = 0; w < workers; w++) {
            for (let i = 0; i < count; i++) {
              if (Option.getOrUndefined(yield* cache.get({ w, i })) === `${w}:${i}`) {
                n++
              }
            }
          }
          return { n, stats: yield* cache.stats() }
        })
      )
      assert.strictEqual(found.n, workers * count)
      assert.strictEqual(found.stats.entries, workers * count)
      assert.isFalse(fs.existsSync(path.join(directory, "cacheness.json.lock")))
      fs.rmSync(directory, { recursive: true, force: true })
    }), 120_000)

  it.live("a lock left by a dead process is broken; a live one past the timeout is a Busy error", () =>
    Effect.gen(function*() {
      const directory = makeTempDir()
      const lock = path.join(directory, "cacheness.json.lock")
      // A real process that has exited: its pid is free.
      const dead = spawnSync(process.execPath, ["-e", ""]).pid
      fs.writeFileSync(lock, JSON.stringify({ pid: dead, host: os.hostname(), time: Date.now() }))
      yield* withCache(directory, Effect.flatMap(Cache.Cache, (cache) => cache.put({ k: 1 }, 1)))
      assert.isFalse(fs.existsSync(lock))
      fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: "another-host", time: Date.now() }))
      const error = yield* Effect.flip(Effect.scoped(Effect.flatMap(
        MetadataStoreJson.make({ filename: path.join(directory, "cacheness.json"), lockTimeout: "200 millis" }),
        (store) => store.clear
      )))
      assert.strictEqual(error.reason, "Busy")
      assert.match(error.message, /held by pid \d+ on another-host/)
      fs.rmSync(directory, { recursive: true, force: true })
    }))
})
