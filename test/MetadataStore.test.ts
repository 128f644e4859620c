import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as MetadataStoreJson from "../src/layers/MetadataStoreJson.js"
import * as MetadataStoreMemory from "../src/layers/MetadataStoreMemory.js"
import * as MetadataStorePg from "../src/layers/MetadataStorePg.js"
import * as MetadataStoreSqlite from "../src/layers/MetadataStoreSqlite.js"
import { MetadataStore } from "../src/services/MetadataStore.js"
import { key, metadataStoreSuite, record } from "./suites/MetadataStoreSuite.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"
import { makeTempDir } from "./support/tmp.js"

metadataStoreSuite("memory", () => MetadataStoreMemory.layer)
metadataStoreSuite("sqlite", () =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(Effect.sync(makeTempDir), (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true })))
    return MetadataStoreSqlite.layer({ filename: path.join(dir, "cache.db") })
  })))

metadataStoreSuite("json", () =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(Effect.sync(makeTempDir), (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true })))
    return MetadataStoreJson.layer({ filename: path.join(dir, "cacheness.json") })
  })))

pgDescribe("MetadataStorePg", () => {
  metadataStoreSuite("postgres", () =>
    Layer.unwrapScoped(Effect.map(pgScopedSchema("meta"), (schema) => MetadataStorePg.layer({ url: pgUrl, schema }))))
})

describe("MetadataStoreSqlite", () => {
  it.scoped("persists entries and batched hits across reopen", () =>
    Effect.gen(function*() {
      const dir = makeTempDir()
      const filename = path.join(dir, "cache.db")
      const open = <A, E>(use: Effect.Effect<A, E, MetadataStore>) =>
        Effect.scoped(Effect.provide(use, MetadataStoreSqlite.layer({ filename })))
      yield* open(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1)))
        yield* store.recordAccess(key(1), 9_000)
        yield* store.recordAccess(null, 9_000)
        // not flushed explicitly: closing the layer must write the batch
      }))
      const r = yield* open(Effect.gen(function*() {
        const store = yield* MetadataStore
        return [Option.getOrThrow(yield* store.lookup(key(1))), yield* store.totals] as const
      }))
      assert.strictEqual(r[0].hits, 1)
      assert.strictEqual(r[0].accessedAt, 9_000)
      assert.strictEqual(r[1].misses, 1)
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.scoped("changeCount sees writes of another connection; leases are shared", () =>
    Effect.gen(function*() {
      const dir = makeTempDir()
      const filename = path.join(dir, "cache.db")
      const a = yield* MetadataStoreSqlite.make({ filename })
      const b = yield* MetadataStoreSqlite.make({ filename })
      const before = a.changeCount!()
      assert.strictEqual(a.changeCount!(), before)
      yield* b.upsert(record(key(1)))
      assert.notStrictEqual(a.changeCount!(), before)
      assert.isTrue(yield* a.acquireLease(key(1), "a", 2_000, 1_000))
      assert.isFalse(yield* b.acquireLease(key(1), "b", 2_000, 1_500))
      assert.isTrue(yield* b.acquireLease(key(1), "b", 3_000, 2_000))
    }))

  it.scoped("refuses a layout written by a newer release", () =>
    Effect.gen(function*() {
      const dir = makeTempDir()
      const filename = path.join(dir, "cache.db")
      yield* Effect.scoped(Effect.provide(MetadataStore, MetadataStoreSqlite.layer({ filename })))
      const Database = (yield* Effect.promise(() => import("better-sqlite3"))).default
      const db = new Database(filename)
      db.prepare("INSERT INTO cacheness_migrations (migration_id, name) VALUES (99, 'future')").run()
      db.close()
      const error = yield* Effect.flip(Effect.scoped(Effect.provide(MetadataStore, MetadataStoreSqlite.layer({ filename }))))
      assert.strictEqual(error._tag, "MetadataError")
      assert.strictEqual((error as any).reason, "NewerLayout")
      assert.match(error.message, /layout 99/)
      fs.rmSync(dir, { recursive: true, force: true })
    }))
})
