import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Cache from "../src/Cache.js"
import { cacheness } from "../src/index.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"
import { tempDir } from "./support/tmp.js"

/** The seed's `MLExperimentMetadata`, as a Schema. */
const MlExperiments = Cache.metadataTable(
  "ml_experiments",
  Schema.Struct({
    experiment_id: Schema.String,
    model_type: Schema.String,
    accuracy: Schema.Number,
    trained_at: Schema.optional(Schema.Date),
    production: Schema.optional(Schema.Boolean),
    tags: Schema.optional(Schema.Array(Schema.String))
  }),
  { indexes: ["model_type", "accuracy"], unique: ["experiment_id"] }
)

const manualCleanup = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

type Make = (config: Cache.CacheConfig) => Layer.Layer<Cache.Cache, unknown>

/** The ml_experiments example end to end, on one backend. `rawSql` = the backend has SQL. */
const customMetadataSuite = (name: string, make: Make, options: { readonly sql: boolean }) =>
  describe(`custom metadata: ${name}`, () => {
    const run = <A, E>(self: Effect.Effect<A, E, Cache.Cache>, config: Cache.CacheConfig = {}) =>
      Effect.provide(self, make({ metadataTables: [MlExperiments], ...manualCleanup, ...config }))

    const seed = Effect.gen(function*() {
      const cache = yield* Cache.Cache
      const experiments = [
        {
          experiment_id: "exp_001",
          model_type: "xgboost",
          accuracy: 0.94,
          trained_at: new Date("2024-01-02T00:00:00Z"),
          production: true
        },
        { experiment_id: "exp_002", model_type: "xgboost", accuracy: 0.87, tags: ["baseline"] },
        { experiment_id: "exp_003", model_type: "random_forest", accuracy: 0.91, production: false }
      ]
      for (const experiment of experiments) {
        yield* cache.put(
          { model: experiment.model_type, experiment: experiment.experiment_id },
          incompressible(experiment.experiment_id === "exp_003" ? 40_000 : 100),
          {
            description: `model of ${experiment.experiment_id}`,
            metadata: { ml_experiments: experiment, note: `free-form ${experiment.experiment_id}` }
          }
        )
        yield* TestClock.adjust("1 second")
      }
      return cache
    })

    it.effect("query with typed filters returns entries and decoded rows", () =>
      run(Effect.gen(function*() {
        const cache = yield* seed
        const high = yield* cache.queryMetadata(MlExperiments, { accuracy: { gte: 0.9 } })
        assert.deepStrictEqual(high.map((m) => m.row.experiment_id), ["exp_001", "exp_003"])
        const [first] = high
        assert.deepStrictEqual(first.row, {
          experiment_id: "exp_001",
          model_type: "xgboost",
          accuracy: 0.94,
          trained_at: new Date("2024-01-02T00:00:00Z"),
          production: true
        })
        assert.strictEqual(first.entry.description, "model of exp_001")
        assert.deepStrictEqual(first.entry.params, { model: "xgboost", experiment: "exp_001" })
        // Keys that are not registered tables stay free-form JSON beside the entry.
        assert.deepStrictEqual(first.entry.metadata, { note: "free-form exp_001" })
        assert.deepStrictEqual(
          (yield* cache.queryMetadata(MlExperiments, { model_type: "xgboost", accuracy: { lt: 0.9 } })).map((m) =>
            m.row.tags
          ),
          [["baseline"]]
        )
        const byAccuracy = yield* cache.queryMetadata(MlExperiments, {}, {
          orderBy: "accuracy",
          descending: true,
          limit: 2
        })
        assert.deepStrictEqual(byAccuracy.map((m) => m.row.experiment_id), ["exp_001", "exp_003"])
        assert.deepStrictEqual(
          (yield* cache.queryMetadata(MlExperiments, {
            experiment_id: { in: ["exp_002", "exp_003", "nope"] },
            model_type: { ne: "xgboost" }
          }))
            .map((m) => m.row.experiment_id),
          ["exp_003"]
        )
        assert.deepStrictEqual(
          (yield* cache.queryMetadata(MlExperiments, { production: true, trained_at: { gte: new Date("2024-01-01") } }))
            .map((m) => m.row.experiment_id),
          ["exp_001"]
        )
        assert.strictEqual((yield* cache.queryMetadata(MlExperiments, { experiment_id: { in: [] } })).length, 0)
        // The entry of a row reads back as usual.
        assert.isTrue(Option.isSome(yield* cache.get({ model: "random_forest", experiment: "exp_003" })))
      })))

    it.effect("a row that does not match its schema, or breaks uniqueness, is a typed error and stores nothing", () =>
      run(Effect.gen(function*() {
        const cache = yield* seed
        const before = yield* cache.stats()
        const bad = yield* Effect.flip(cache.put({ k: "bad" }, incompressible(30_000), {
          metadata: { ml_experiments: { experiment_id: "exp_9", model_type: "svm", accuracy: "high" } }
        }))
        assert.strictEqual(bad._tag, "MetadataError")
        assert.strictEqual((bad as any).reason, "InvalidRow")
        assert.match(bad.message, /ml_experiments/)
        const duplicate = yield* Effect.flip(cache.put({ k: "dup" }, incompressible(30_000), {
          metadata: { ml_experiments: { experiment_id: "exp_001", model_type: "svm", accuracy: 0.5 } }
        }))
        assert.strictEqual((duplicate as any).reason, "InvalidRow")
        const after = yield* cache.stats()
        assert.strictEqual(after.entries, before.entries)
        assert.strictEqual(after.totalBytes, before.totalBytes)
        assert.isFalse(yield* cache.has({ k: "bad" }))
        assert.isFalse(yield* cache.has({ k: "dup" }))
        assert.deepStrictEqual((yield* cache.verify()).orphans, [], "no blob left behind")
        const filterError = yield* Effect.flip(cache.queryMetadata(MlExperiments, { accuracy: { gte: "x" as any } }))
        assert.strictEqual(filterError.reason, "InvalidRow")
      })))

    it.effect("rows go with their entry: invalidate, overwrite, expiry, eviction, clear", () =>
      run(Effect.gen(function*() {
        const cache = yield* seed
        const ids = () => Effect.map(cache.queryMetadata(MlExperiments), (ms) => ms.map((m) => m.row.experiment_id))
        assert.isTrue(yield* cache.invalidate({ model: "xgboost", experiment: "exp_002" }))
        assert.deepStrictEqual(yield* ids(), ["exp_001", "exp_003"])
        // A new version of the entry without a row drops the old row.
        yield* cache.put({ model: "xgboost", experiment: "exp_001" }, "retrained")
        assert.deepStrictEqual(yield* ids(), ["exp_003"])
        // exp_002's experiment id is free again.
        yield* cache.put({ k: "short" }, 1, {
          ttl: "1 hour",
          metadata: { ml_experiments: { experiment_id: "exp_002", model_type: "svm", accuracy: 0.6 } }
        })
        assert.deepStrictEqual(yield* ids(), ["exp_003", "exp_002"])
        yield* TestClock.adjust("2 hours")
        assert.deepStrictEqual(yield* ids(), ["exp_003"], "expired entries are not returned")
        assert.strictEqual(yield* cache.cleanupExpired(), 1)
        if (options.sql) {
          const sql = yield* cache.sql
          const [{ n }] = yield* sql.unsafe<{ n: number }>(
            `SELECT count(*) AS n FROM ${yield* tableName} WHERE experiment_id = 'exp_002'`
          )
          assert.strictEqual(Number(n), 0, "expired row deleted")
        }
        assert.strictEqual(yield* cache.clear(), 2)
        assert.deepStrictEqual(yield* ids(), [])
        if (options.sql) {
          const sql = yield* cache.sql
          const [{ n }] = yield* sql.unsafe<{ n: number }>(`SELECT count(*) AS n FROM ${yield* tableName}`)
          assert.strictEqual(Number(n), 0)
        }
      })))

    it.effect("eviction deletes the evicted entries' rows", () =>
      run(
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          for (let i = 0; i < 6; i++) {
            yield* cache.put({ i }, incompressible(1_000), {
              metadata: { ml_experiments: { experiment_id: `e${i}`, model_type: "m", accuracy: i / 10 } }
            })
            yield* TestClock.adjust("1 second")
          }
          const left = (yield* cache.queryMetadata(MlExperiments)).map((m) => m.row.experiment_id)
          assert.isTrue(left.length < 6 && left.length > 0, `rows left: ${left}`)
          assert.strictEqual(left.length, (yield* cache.stats()).entries)
          assert.strictEqual(left[left.length - 1], "e5")
          // The evicted rows are gone, not merely hidden: their unique experiment ids are free again.
          assert.isFalse(left.includes("e0"))
          yield* cache.put({ again: 0 }, 1, {
            metadata: { ml_experiments: { experiment_id: "e0", model_type: "m", accuracy: 0 } }
          })
        }),
        { maxSize: 5_000 }
      ))

    if (options.sql) {
      it.effect("raw SQL joins the custom table with the entries", () =>
        run(Effect.gen(function*() {
          const cache = yield* seed
          const sql = yield* cache.sql
          const entries = yield* entriesTable
          const rows = yield* sql.unsafe<{ description: string; accuracy: number }>(
            `SELECT e.description, m.accuracy FROM ${yield* tableName} m JOIN ${entries} e ON e.key = m.cache_key
             WHERE m.model_type = 'xgboost' ORDER BY m.accuracy DESC`
          )
          assert.deepStrictEqual(rows.map((r) => [r.description, Number(r.accuracy)]), [["model of exp_001", 0.94], [
            "model of exp_002",
            0.87
          ]])
        })))
    } else {
      it.effect("cache.sql is Unsupported without a SQL backend", () =>
        run(Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const error = yield* Effect.flip(cache.sql)
          assert.strictEqual(error.reason, "Unsupported")
        })))
    }

    it.effect("a table that is not registered is a typed error", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const Other = Cache.metadataTable("other_table", Schema.Struct({ a: Schema.String }))
        const error = yield* Effect.flip(cache.queryMetadata(Other))
        assert.strictEqual(error._tag, "MetadataError")
        assert.strictEqual((error as any).reason, "UnknownTable")
        // Unregistered names in put's metadata are plain free-form JSON.
        yield* cache.put({ k: 1 }, 1, { metadata: { other_table: { a: "x" } } })
        assert.deepStrictEqual(Option.getOrThrow(yield* cache.getWithMetadata({ k: 1 })).entry.metadata, {
          other_table: { a: "x" }
        })
      })))
  })

/** The qualified names a raw query uses: set per backend by the layer factory below. */
let qualifier = ""
const tableName = Effect.sync(() => `${qualifier}ml_experiments`)
const entriesTable = Effect.sync(() => `${qualifier}cacheness_entries`)

customMetadataSuite("memory", (config) => Cache.layerMemory(config), { sql: false })
customMetadataSuite(
  "JSON",
  (config) =>
    Layer.unwrapScoped(
      Effect.map(tempDir, (directory) => Cache.layer({ ...config, directory, metadataBackend: "json" }))
    ),
  { sql: false }
)
customMetadataSuite("SQLite", (config) =>
  Layer.unwrapScoped(Effect.map(tempDir, (directory) => {
    qualifier = ""
    return Cache.layer({ ...config, directory })
  })), { sql: true })
pgDescribe("custom metadata on PostgreSQL", () => {
  customMetadataSuite("PostgreSQL", (config) =>
    Layer.unwrapScoped(Effect.map(pgScopedSchema("custom"), (schema) => {
      qualifier = `${schema}.`
      return Cache.layer({
        ...config,
        metadataBackend: "postgres",
        blobs: "postgres",
        postgres: { url: pgUrl, schema }
      })
    })), { sql: true })
})

describe("custom metadata tables: declaration and Promise client", () => {
  it("rejects names that are not plain identifiers and indexes on unknown columns", () => {
    assert.throws(() => Cache.metadataTable("Bad-Name", Schema.Struct({ a: Schema.String })), /table name/)
    assert.throws(() => Cache.metadataTable("cacheness_x", Schema.Struct({ a: Schema.String })), /cacheness_/)
    assert.throws(() => Cache.metadataTable("t", Schema.Struct({ cache_key: Schema.String })), /cache_key/)
    assert.throws(
      () => Cache.metadataTable("t", Schema.Struct({ a: Schema.String }), { indexes: ["b" as any] }),
      /unknown column b/
    )
  })

  it.scoped("registering the same table twice is a ConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(Cache.Cache, Cache.layerMemory({ metadataTables: [MlExperiments, MlExperiments] }))
      )
      assert.strictEqual(error._tag, "ConfigError")
    }))

  it.scoped("the Promise client attaches rows and queries them", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const result = yield* Effect.promise(async () => {
        const cache = cacheness({ directory, metadataTables: [MlExperiments] })
        await cache.put({ model: "m1" }, [1, 2], {
          metadata: { ml_experiments: { experiment_id: "p1", model_type: "lr", accuracy: 0.99 } }
        })
        const found = await cache.queryMetadata(MlExperiments, { accuracy: { gt: 0.5 } })
        await cache.close()
        return found
      })
      assert.deepStrictEqual(result.map((m) => [m.row.experiment_id, m.entry.params]), [["p1", { model: "m1" }]])
    }))
})
