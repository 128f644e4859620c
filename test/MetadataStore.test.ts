import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { toEntry } from "../src/metadata/entries.js"
import * as MetadataStoreJson from "../src/metadata/json.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import * as MetadataStorePg from "../src/metadata/pg.js"
import { MetadataStore } from "../src/metadata/service.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { metadataStoreSuite } from "../src/testing.js"
import { key, record } from "../src/testing/MetadataStoreSuite.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"
import { makeTempDir } from "./support/tmp.js"

metadataStoreSuite("memory", MetadataStoreMemory.layer)
metadataStoreSuite(
  "sqlite",
  Layer.unwrapScoped(Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(makeTempDir),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    return MetadataStoreSqlite.layer({ filename: path.join(dir, "cache.db") })
  }))
)

metadataStoreSuite(
  "json",
  Layer.unwrapScoped(Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(makeTempDir),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    return MetadataStoreJson.layer({ filename: path.join(dir, "cacheness.json") })
  }))
)

pgDescribe("MetadataStorePg", () => {
  metadataStoreSuite(
    "postgres",
    Layer.unwrapScoped(Effect.map(pgScopedSchema("meta"), (schema) => MetadataStorePg.layer({ url: pgUrl, schema })))
  )
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
      const error = yield* Effect.flip(
        Effect.scoped(Effect.provide(MetadataStore, MetadataStoreSqlite.layer({ filename })))
      )
      assert.strictEqual(error._tag, "MetadataError")
      assert.strictEqual((error as any).reason, "NewerLayout")
      assert.match(error.message, /layout 99/)
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.scoped("listEntries equals list mapped to entries, on every order and page, damaged rows included", () =>
    Effect.gen(function*() {
      const dir = makeTempDir()
      const filename = path.join(dir, "cache.db")
      const store = yield* MetadataStoreSqlite.make({ filename })
      const texts = [
        "",
        "plain",
        "quote \" back\\slash",
        "ctl \u0000\u001f\n",
        "n\u00e9 \ud83d\ude00",
        "\u2028",
        "x".repeat(300)
      ]
      const jsons = [
        null,
        JSON.stringify({ a: [1, { b: "c" }], n: 1.5e300 }),
        "{bad",
        "1,2",
        "\"s\"",
        "[1] x",
        "-0",
        "12345678901234567890"
      ]
      for (let i = 0; i < 40; i++) {
        yield* store.upsert(record(key(i), {
          namespace: texts[i % 3],
          description: i % 4 === 0 ? null : texts[i % texts.length],
          format: i % 5 === 0 ? "arrow" : "json",
          storedBytes: (i * 37) % 11,
          rawBytes: i * 1_000_003,
          createdAt: 1_000 + (i % 7),
          accessedAt: 2_000 + ((i * 13) % 17),
          expiresAt: i % 3 === 0 ? null : 5_000 + ((i * 7) % 5),
          params: jsons[i % jsons.length],
          metadata: jsons[(i + 3) % jsons.length]
        }))
        if (i % 6 === 0) yield* store.recordAccess(key(i), 3_000 + i)
      }
      const same = Effect.gen(function*() {
        const orders = [undefined, "createdAt", "accessedAt", "expiresAt", "storedBytes", "hits", "key"] as const
        for (const orderBy of orders) {
          for (const descending of [undefined, true]) {
            for (
              const page of [{}, { limit: 5 }, { limit: 4, offset: 3 }, { offset: 30 }, { namespace: "plain" }, {
                namespace: "plain",
                limit: 2
              }]
            ) {
              const options = { orderBy, descending, ...page }
              assert.deepStrictEqual(
                yield* store.listEntries!(options),
                (yield* store.list(options)).map(toEntry),
                JSON.stringify(options)
              )
            }
          }
        }
      })
      yield* same
      // Values another writer could leave behind: text and fractions in number columns, a BLOB
      // where text belongs (JSON cannot hold it: the listing reads raw rows instead).
      const Database = (yield* Effect.promise(() => import("better-sqlite3"))).default
      const db = new Database(filename)
      db.prepare("UPDATE cacheness_entries SET created_at = 'abc', expires_at = 1.25 WHERE key = ?").run(key(1))
      db.prepare("UPDATE cacheness_entries SET hits = 'many', raw_bytes = 9007199254740993 WHERE key = ?").run(key(2))
      yield* same
      db.prepare("UPDATE cacheness_entries SET description = x'00ff' WHERE key = ?").run(key(3))
      db.close()
      yield* same
      fs.rmSync(dir, { recursive: true, force: true })
    }))
})
