/**
 * One PostgreSQL pool per URL: a cache with PostgreSQL metadata and blobs, and a pull-through
 * cache on the same database, share one `PgClient`; the pool closes with its last holder; a
 * missing driver is still a readable typed error; and a script that never closes its PostgreSQL
 * cache still exits (the pool lets the process go while its connections are idle).
 */
import { assert, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as Cache from "../src/Cache.js"
import * as MetadataStore from "../src/MetadataStore.js"
import * as PgPool from "../src/shared/pgClient.js"
import * as SqlPullThrough from "../src/SqlPullThrough.js"
import { root } from "./support/build.js"
import { pgDescribe, pgExec, pgScopedSchema, pgUrl } from "./support/postgres.js"
import { makeTempDir } from "./support/tmp.js"

const cacheLayer = (schema: string, extra: Partial<Cache.CacheConfig> = {}) =>
  Cache.layer({
    metadataBackend: "postgres",
    blobs: "postgres",
    postgres: { url: pgUrl, schema },
    cleanupOnOpen: false,
    ...extra
  })

pgDescribe("PostgreSQL: one pool per URL", () => {
  it.scopedLive(
    "a cache on PostgreSQL metadata and blobs opens one pool, used by both stores",
    () =>
      Effect.gen(function*() {
        const schema = yield* pgScopedSchema("pgshare")
        const before = PgPool.unsafeOpenPools()
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(cacheLayer(schema), scope)
        assert.strictEqual(PgPool.unsafeOpenPools() - before, 1, "metadata and blobs share one pool")
        const cache = Context.get(context, Cache.Cache)
        const large = new Float64Array(100_000).map((_, i) => Math.sin(i))
        yield* cache.put({ k: "small" }, "v")
        yield* cache.put({ k: "large" }, large)
        assert.deepStrictEqual(yield* cache.get({ k: "small" }), Option.some("v"))
        assert.deepStrictEqual(yield* cache.get({ k: "large" }), Option.some(large))
        assert.strictEqual((yield* cache.stats()).entries, 2)

        // A pull-through cache on the same URL joins the same pool.
        const pullScope = yield* Scope.make()
        yield* Layer.buildWithScope(SqlPullThrough.layerPg({ url: pgUrl, schema }), pullScope)
        assert.strictEqual(PgPool.unsafeOpenPools() - before, 1, "the pull-through layer shares it too")
        yield* Scope.close(pullScope, Exit.void)
        assert.strictEqual(PgPool.unsafeOpenPools() - before, 1, "still held by the cache")
        assert.deepStrictEqual(yield* cache.get({ k: "large" }), Option.some(large))

        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(PgPool.unsafeOpenPools(), before, "closed with its last holder")
      }),
    60_000
  )

  it.scopedLive(
    "two caches on one URL share a pool; each close lets go of its hold only",
    () =>
      Effect.gen(function*() {
        const [one, two] = [yield* pgScopedSchema("pgshare"), yield* pgScopedSchema("pgshare")]
        const before = PgPool.unsafeOpenPools()
        const [scopeOne, scopeTwo] = [yield* Scope.make(), yield* Scope.make()]
        const [a, b] = yield* Effect.all([
          Layer.buildWithScope(cacheLayer(one), scopeOne),
          Layer.buildWithScope(cacheLayer(two), scopeTwo)
        ], { concurrency: 2 })
        assert.strictEqual(PgPool.unsafeOpenPools() - before, 1)
        yield* Context.get(a, Cache.Cache).put({ k: 1 }, "one")
        yield* Context.get(b, Cache.Cache).put({ k: 1 }, "two")
        yield* Scope.close(scopeOne, Exit.void)
        assert.deepStrictEqual(yield* Context.get(b, Cache.Cache).get({ k: 1 }), Option.some("two"))
        yield* Scope.close(scopeTwo, Exit.void)
        assert.strictEqual(PgPool.unsafeOpenPools(), before)
      }),
    60_000
  )

  it.scopedLive("other connection settings get their own pool", () =>
    Effect.gen(function*() {
      const schema = yield* pgScopedSchema("pgshare")
      const before = PgPool.unsafeOpenPools()
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(cacheLayer(schema), scope)
      yield* Layer.buildWithScope(
        cacheLayer(schema, { postgres: { url: pgUrl, schema, connectTimeout: "3 seconds" } }),
        scope
      )
      assert.strictEqual(PgPool.unsafeOpenPools() - before, 2)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(PgPool.unsafeOpenPools(), before)
    }), 60_000)

  it.scopedLive("an unreachable server fails the layer and leaves no pool open", () =>
    Effect.gen(function*() {
      const before = PgPool.unsafeOpenPools()
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(Cache.layer({
        metadataBackend: "postgres",
        blobs: "postgres",
        postgres: { url: "postgres://postgres@127.0.0.1:1/none", connectTimeout: "2 seconds" }
      }))))
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(PgPool.unsafeOpenPools(), before)
    }), 30_000)
})

pgDescribe("PostgreSQL: a script that never closes its cache", () => {
  it("exits by itself well before the pool's idle timeout", async () => {
    const cwd = makeTempDir()
    const schema = `pgexit_${Math.random().toString(36).slice(2, 10)}`
    try {
      const index = path.join(root, "src/index.ts")
      const tsx = pathToFileURL(path.join(root, "node_modules/tsx/dist/loader.mjs")).href
      const source = `
import { cacheness } from ${JSON.stringify(index)}
const cache = cacheness({ metadataBackend: "postgres", blobs: "postgres", postgres: { url: ${
        JSON.stringify(pgUrl)
      }, schema: ${JSON.stringify(schema)}, idleTimeout: "5 minutes" } })
await cache.put({ name: "a" }, { value: 1 })
await cache.put({ name: "big" }, new Float64Array(50_000).fill(2))
console.log("get", JSON.stringify(await cache.get({ name: "a" })))
`
      const file = path.join(cwd, "script.mts")
      fs.writeFileSync(file, source)
      const started = Date.now()
      const run = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", tsx, file], { cwd, stdio: ["ignore", "pipe", "pipe"] })
        let stdout = ""
        let stderr = ""
        child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d))
        child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d))
        const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
        child.on("error", reject)
        child.on("close", (code) => {
          clearTimeout(timer)
          resolve({ code, stdout, stderr })
        })
      })
      const ms = Date.now() - started
      // Killed at 60 s, so exit code 0 means it left long before the 5-minute idle timeout.
      assert.strictEqual(run.code, 0, `did not exit by itself (${ms} ms): ${run.stderr}`)
      assert.include(run.stdout, `get {"value":1}`)
      // What it wrote is there for the next process.
      const got = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(cacheLayer(schema))
        return yield* Context.get(context, Cache.Cache).get({ name: "a" })
      })))
      assert.deepStrictEqual(got, Option.some({ value: 1 }))
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true })
      await pgExec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    }
  }, 90_000)
})

pgDescribe("PostgreSQL from the environment", () => {
  it.scopedLive("layerConfig reads CACHENESS_POSTGRES_URL and _SCHEMA; a schema without a URL names postgres.url", () =>
    Effect.gen(function*() {
      const schema = yield* pgScopedSchema("pgenv")
      const env = (entries: Record<string, string>) =>
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))
      const stats = yield* Effect.scoped(
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: "from env" }, "v")
          return yield* cache.stats()
        }).pipe(Effect.provide(Cache.layerConfig({ cleanupOnOpen: false })))
      ).pipe(env({
        CACHENESS_METADATA_BACKEND: "postgres",
        CACHENESS_POSTGRES_URL: pgUrl,
        CACHENESS_POSTGRES_SCHEMA: schema
      }))
      assert.strictEqual(stats.backend, "postgres")
      assert.strictEqual(stats.entries, 1)
      // The entry is in that schema, as another client sees it.
      const other = yield* Effect.scoped(
        Effect.flatMap(
          Layer.build(cacheLayer(schema)),
          (context) => Context.get(context, Cache.Cache).get({ k: "from env" })
        )
      )
      assert.deepStrictEqual(other, Option.some("v"))

      const error = yield* Effect.flip(Effect.scoped(Layer.build(Cache.layerConfig()))).pipe(env({
        CACHENESS_METADATA_BACKEND: "postgres",
        CACHENESS_POSTGRES_SCHEMA: schema
      }))
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, "postgres.url")
    }))
})

it.effect("PostgreSQL without @effect/sql-pg: the pull-through layer names the Effect 3 line of the driver", () =>
  Effect.gen(function*() {
    PgPool.unsafeSetSpecifier("@effect/sql-pg/NotInstalled")
    const error = yield* Effect.flip(
      Effect.scoped(Layer.build(SqlPullThrough.layerPg({ url: "postgres://127.0.0.1:1/none" })))
    ).pipe(
      Effect.ensuring(Effect.sync(() => PgPool.unsafeSetSpecifier("@effect/sql-pg/PgClient")))
    )
    assert.strictEqual(error._tag, "SqlPullThroughError")
    assert.strictEqual(error.reason, "InvalidConfig")
    assert.include(error.message, "npm install @effect/sql-pg@^0.53")
  }))

pgDescribe("PostgreSQL: a migration that fails", () => {
  it.scopedLive(
    "is a typed MigrationFailed from open, not a defect (the Migrator dies on it)",
    () =>
      Effect.gen(function*() {
        const schema = yield* pgScopedSchema("pgmigfail")
        // A view where migration 1 creates its entries table: CREATE TABLE IF NOT EXISTS skips
        // it, and the index on it then fails.
        yield* Effect.promise(() => pgExec(`CREATE SCHEMA IF NOT EXISTS "${schema}"`))
        yield* Effect.promise(() => pgExec(`CREATE VIEW "${schema}".cacheness_entries AS SELECT 1 AS expires_at`))
        const exit = yield* Effect.exit(Layer.build(MetadataStore.layerPg({ url: pgUrl, schema })))
        assert.isTrue(Exit.isFailure(exit), "open fails")
        if (Exit.isFailure(exit)) {
          assert.isTrue(Chunk.isEmpty(Cause.defects(exit.cause)), `a defect:\n${Cause.pretty(exit.cause)}`)
          const failure = Cause.failureOption(exit.cause)
          assert.isTrue(Option.isSome(failure) && (failure.value as any).reason === "MigrationFailed")
        }
      })
  )
})
