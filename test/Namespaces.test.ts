import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import { cached } from "../src/cache/cached.js"
import * as CacheLayer from "../src/cache/layer.js"
import { Cache } from "../src/cache/service.js"
import type { CacheConfig } from "../src/schema/CacheConfig.js"
import * as NamespaceKey from "../src/shared/namespaceKey.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"
import { tempDir } from "./support/tmp.js"

const readme = { model: "xgboost", dataset: "customer_data", version: "1.0" }
const GOLDEN = {
  a: "3a15a377c264aab2",
  train: "45d7a61a17942b18",
  unicode: "bd21d193ac63850a"
}

const manual = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

describe("namespace keys", () => {
  // Part of the public contract, like the Hasher's golden vectors: a change re-keys every
  // namespaced entry of every user's cache.
  it.effect("golden vectors: the default namespace keeps every key; namespaced keys are pinned", () =>
    Effect.gen(function*() {
      const cache = yield* Cache
      assert.strictEqual(yield* cache.key(readme), "6f5f5d2873dbc730")
      assert.strictEqual(yield* cache.key(readme, { namespace: "" }), "6f5f5d2873dbc730")
      assert.strictEqual(yield* cache.key({}), "adff3e1670fc34c7")
      const derive = yield* NamespaceKey.load
      for (
        const [namespace, key, expected] of [
          ["a", "6f5f5d2873dbc730", GOLDEN.a],
          ["cached:train", "6f5f5d2873dbc730", GOLDEN.train],
          ["n\u00e9 \ud83d\ude00", "adff3e1670fc34c7", GOLDEN.unicode]
        ] as const
      ) {
        assert.strictEqual(derive(namespace, key), expected, namespace)
      }
      assert.strictEqual(yield* cache.key(readme, { namespace: "a" }), GOLDEN.a)
      assert.strictEqual(yield* cache.key(readme, { namespace: "cached:train" }), GOLDEN.train)
      assert.strictEqual(yield* cache.key({}, { namespace: "n\u00e9 \ud83d\ude00" }), GOLDEN.unicode)
      // Length-prefixed: a namespace cannot run into the key.
      assert.notStrictEqual(derive("ab", "c".repeat(16)), derive("a", "b" + "c".repeat(15)))
    }).pipe(Effect.provide(CacheLayer.layerMemory())))

  it.effect("rebinding a checksum moves it from one key to another; signatures are left alone", () =>
    Effect.sync(() => {
      const sum = "0123456789abcdef"
      const moved = NamespaceKey.rebindChecksum(sum, "00000000000000ff", "ff00000000000000")
      assert.strictEqual(moved, "fe23456789abcd10")
      assert.strictEqual(NamespaceKey.rebindChecksum(moved, "ff00000000000000", "00000000000000ff"), sum)
      assert.strictEqual(NamespaceKey.rebindChecksum("hmac:abc", "00000000000000ff", "ff00000000000000"), "hmac:abc")
    }))
})

describe("memoised functions live in cached:<name>", () => {
  it.effect("their keys are the namespaced ones, and hits keep working", () =>
    Effect.gen(function*() {
      const cache = yield* Cache
      let runs = 0
      const square = cached((n: number) => Effect.sync(() => (runs++, n * n)), { name: "square" })
      assert.strictEqual(yield* square(4), 16)
      assert.strictEqual(yield* square(4), 16)
      assert.strictEqual(runs, 1)
      const [entry] = yield* cache.list({ namespace: "cached:square" })
      assert.strictEqual(entry.key, yield* cache.key({ fn: "square", args: [4] }, { namespace: "cached:square" }))
      assert.notStrictEqual(entry.key, yield* cache.key({ fn: "square", args: [4] }))
      assert.strictEqual((yield* cache.stats({ namespace: "cached:square" })).entries, 1)
      assert.strictEqual((yield* square.info).entries, 1)
    }).pipe(Effect.provide(CacheLayer.layerMemory())))
})

/**
 * An old cache written in the layout before namespaces counted: its entries put in the default
 * namespace (key = the params' key), then labelled with their namespace directly in the store, the
 * way the old layout kept them, and the store's layout taken back to before migration 4.
 */
const migrationScenario = (
  config: CacheConfig,
  downgrade: (labels: ReadonlyArray<readonly [string, string]>) => Effect.Effect<void, unknown>
) =>
  Effect.gen(function*() {
    const big = "x".repeat(200_000) + Math.random()
    const labels = yield* Effect.gen(function*() {
      const cache = yield* Cache
      const small = yield* cache.put({ item: 1 }, "small in a")
      const blob = yield* cache.put({ item: 2 }, big)
      const memo = yield* cache.put({ fn: "square", args: [3] }, 9)
      yield* cache.put({ item: 1, other: true }, "stays default")
      return [[small, "a"], [blob, "a"], [memo, "cached:square"]] as const
    }).pipe(Effect.provide(CacheLayer.layer(config)), Effect.scoped)
    yield* downgrade(labels)
    yield* Effect.gen(function*() {
      const cache = yield* Cache
      assert.deepStrictEqual(yield* cache.get({ item: 1 }, { namespace: "a" }), Option.some("small in a"))
      assert.deepStrictEqual(yield* cache.get({ item: 2 }, { namespace: "a" }), Option.some(big))
      assert.isTrue(yield* cache.has({ item: 2 }, { namespace: "a" }))
      // Rekeyed: no longer under the default namespace's key.
      assert.isTrue(Option.isNone(yield* cache.get({ item: 1 })))
      assert.deepStrictEqual(yield* cache.get({ item: 1, other: true }), Option.some("stays default"))
      assert.strictEqual((yield* cache.stats({ namespace: "a" })).entries, 2)
      assert.strictEqual((yield* cache.stats({ namespace: "cached:square" })).entries, 1)
      assert.strictEqual((yield* cache.stats({ namespace: "" })).entries, 1)
      assert.strictEqual((yield* cache.stats()).entries, 4)
      let runs = 0
      const square = cached((n: number) => Effect.sync(() => (runs++, n * n)), { name: "square" })
      assert.strictEqual(yield* square(3), 9)
      assert.strictEqual(runs, 0, "the memoised entry written before the migration is a hit")
      const report = yield* cache.verify()
      assert.deepStrictEqual(report.checksumMismatches, [])
      assert.deepStrictEqual(report.orphans, [])
      // Still writable and partitioned after the migration.
      yield* cache.put({ item: 1 }, "b now", { namespace: "b" })
      assert.deepStrictEqual(yield* cache.get({ item: 1 }, { namespace: "a" }), Option.some("small in a"))
      assert.strictEqual(yield* cache.invalidateWhere({ namespace: "a" }), 2)
      assert.deepStrictEqual(yield* cache.get({ item: 1 }, { namespace: "b" }), Option.some("b now"))
    }).pipe(Effect.provide(CacheLayer.layer(config)), Effect.scoped)
  })

describe("existing caches migrate", () => {
  it.live("SQLite: a layout-3 database is rekeyed by migration 4_namespaces", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* migrationScenario({ directory, ...manual }, (labels) =>
        Effect.sync(() => {
          const db = new Database(path.join(directory, "cacheness.db"))
          try {
            // Every migration from 4 on is taken back (the later ones are idempotent and run again).
            db.exec(`DELETE FROM cacheness_migrations WHERE migration_id >= 4;
              DROP TRIGGER cacheness_entries_ns_ai; DROP TRIGGER cacheness_entries_ns_ad;
              DROP TRIGGER cacheness_entries_ns_au; DROP TABLE cacheness_namespace_counters;
              DROP INDEX cacheness_entries_namespace;`)
            for (const [key, namespace] of labels) {
              db.prepare(`UPDATE cacheness_entries SET namespace = ? WHERE key = ?`).run(namespace, key)
            }
          } finally {
            db.close()
          }
        }))
    }).pipe(Effect.scoped))

  it.live("JSON: a layout-1 index is rekeyed on load", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* migrationScenario({ directory, metadataBackend: "json", ...manual }, (labels) =>
        Effect.sync(() => {
          const file = path.join(directory, "cacheness.json")
          const doc = JSON.parse(fs.readFileSync(file, "utf8"))
          doc.layout = 1
          for (const [key, namespace] of labels) doc.entries[key].namespace = namespace
          fs.writeFileSync(file, JSON.stringify(doc))
        }))
    }).pipe(Effect.scoped))
})

pgDescribe("PostgreSQL migration", () => {
  it.live("a layout-3 schema is rekeyed by migration 4_namespaces", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const schema = yield* pgScopedSchema("ns")
      const E = `${schema}.cacheness_entries`
      yield* migrationScenario(
        { directory, metadataBackend: "postgres", postgres: { url: pgUrl, schema }, ...manual },
        (labels) =>
          Effect.scoped(Effect.gen(function*() {
            const sql = yield* PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1 })
            // Every migration from 4 on is taken back (the later ones are idempotent and run again).
            yield* sql.unsafe(`DELETE FROM ${schema}.cacheness_migrations WHERE migration_id >= 4`)
            yield* sql.unsafe(`DROP TABLE ${schema}.cacheness_tags`)
            // Layout 8's counter triggers keep the namespace rows; layout 3 had none.
            for (const t of ["cacheness_totals_insert", "cacheness_totals_delete", "cacheness_totals_update"]) {
              yield* sql.unsafe(`DROP TRIGGER ${t} ON ${E}`)
            }
            yield* sql.unsafe(`DROP TABLE ${schema}.cacheness_namespace_counters`)
            yield* sql.unsafe(`DROP INDEX ${schema}.cacheness_entries_namespace`)
            yield* sql.unsafe(`ALTER TABLE ${E} DROP COLUMN seq`)
            for (const [key, namespace] of labels) {
              yield* sql.unsafe(`UPDATE ${E} SET namespace = $1 WHERE key = $2`, [namespace, key])
            }
          })).pipe(Effect.provide(Reactivity.layer))
      )
    }).pipe(Effect.scoped))
})
