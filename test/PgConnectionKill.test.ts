// PostgreSQL: the cache's connection is terminated (pg_terminate_backend) in the middle of a
// transaction — a put whose entry row is written but whose custom-metadata row waits on a lock
// held by another session. The put must fail with a typed error and leave no partial rows (the
// entry rolled back with the transaction, counters equal to the rows, no blob left behind);
// reads on connections killed while idle are retried on a fresh connection; the cache keeps
// working afterwards.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { captureWarnings } from "./support/logs.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"
import { listFiles, tempDir } from "./support/tmp.js"

const Runs = Cache.metadataTable("kill_runs", Schema.Struct({ run: Schema.String }))

pgDescribe("PostgreSQL: connection killed mid-transaction", () => {
  it.scopedLive(
    "a typed error, no partial rows, reads retried on a fresh connection, the cache keeps working",
    () =>
      Effect.gen(function*() {
        const schema = yield* pgScopedSchema("kill")
        const directory = yield* tempDir
        const context = yield* Layer.build(Cache.layer({
          directory,
          metadataBackend: "postgres",
          postgres: { url: pgUrl, schema },
          metadataTables: [Runs],
          cleanupOnOpen: false,
          cleanupInterval: "100000 days",
          maxSize: null
        }))
        const cache = Context.get(context, Cache.Cache)
        yield* cache.put({ k: "before" }, "old", { metadata: { kill_runs: { run: "0" } } })

        const admin = yield* PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 3 }).pipe(
          Effect.provide(Reactivity.layer)
        )
        const counts = admin.unsafe<{ rows: number; entries: number; bytes: number; actual: number; runs: number }>(
          `SELECT (SELECT count(*)::int FROM ${schema}.cacheness_entries) AS rows,
          c.entries::int AS entries, c.bytes::float8 AS bytes,
          (SELECT coalesce(sum(stored_bytes), 0)::float8 FROM ${schema}.cacheness_entries) AS actual,
          (SELECT count(*)::int FROM ${schema}.kill_runs) AS runs
        FROM ${schema}.cacheness_counters c`
        ).pipe(Effect.map((rows) => rows[0]))
        const before = yield* counts

        // Another session holds the custom table: the put writes its entry row, then waits.
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const locker = yield* admin.withTransaction(Effect.gen(function*() {
          yield* admin.unsafe(`LOCK TABLE ${schema}.kill_runs IN ACCESS EXCLUSIVE MODE`)
          yield* Deferred.succeed(locked, undefined)
          yield* Deferred.await(release)
        })).pipe(Effect.fork)
        yield* Deferred.await(locked)
        const put = yield* Effect.fork(Effect.exit(
          cache.put({ k: "killed" }, incompressible(40_000), { metadata: { kill_runs: { run: "1" } } })
        ))
        // Our schema's name is random: only the cache's own blocked connection matches.
        const blocked = yield* admin.unsafe<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%${schema}.kill_runs%'`
        ).pipe(
          Effect.filterOrFail((rows) => rows.length > 0, () => "not yet" as const),
          Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("20 seconds")))
        )
        assert.strictEqual(blocked.length, 1)
        yield* admin.unsafe(`SELECT pg_terminate_backend(${blocked[0].pid})`)
        const exit = yield* Fiber.join(put)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(locker)

        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Option.getOrNull(Cause.failureOption(exit.cause)) : null
        assert.strictEqual(error?._tag, "MetadataError", Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "succeeded")
        assert.match(error!.message, /terminat/i)
        const after = yield* counts
        assert.deepStrictEqual(after, before, "the entry row rolled back with its transaction")
        assert.strictEqual(after.rows, after.entries)
        assert.strictEqual(after.bytes, after.actual)
        assert.deepStrictEqual(listFiles(path.join(directory, "blobs")), [], "the blob of the failed put removed")

        // Kill every idle connection of the cache: the next reads land on dead sockets and retry.
        yield* cache.get({ k: "before" }) // the pool opens a fresh connection, now idle
        const idle = yield* admin.unsafe<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE application_name = 'cacheness' AND state = 'idle' AND query ILIKE '%${schema}.%'`
        )
        assert.isAbove(idle.length, 0, "the cache has idle connections to kill")
        yield* Effect.forEach(idle, ({ pid }) => admin.unsafe(`SELECT pg_terminate_backend(${pid})`), { discard: true })
        const reads = yield* captureWarnings(
          Effect.all([cache.get({ k: "before" }), cache.get({ k: "killed" }), cache.stats()])
        )
        assert.deepStrictEqual(reads.result[0], Option.some("old"))
        assert.isTrue(Option.isNone(reads.result[1]))
        assert.strictEqual(reads.result[2].entries, before.entries)

        yield* cache.put({ k: "killed" }, "after", { metadata: { kill_runs: { run: "2" } } })
        assert.deepStrictEqual(yield* cache.get({ k: "killed" }), Option.some("after"))
        const report = yield* cache.verify()
        assert.deepStrictEqual([report.orphans, report.dangling, report.sizeMismatches, report.checksumMismatches], [
          [],
          [],
          [],
          []
        ])
      }),
    60_000
  )
})
