/**
 * PostgreSQL counters are locked in one order by every write: the totals row, then namespace
 * rows. An access flush (hit counts) touches no counter but the hits; it used to re-add every
 * namespace row it touched, so a put in that namespace (totals row, then namespace row) and the
 * flush (namespace row, then totals row) deadlocked — met by the many-machines rig.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Cache from "../src/Cache.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"

pgDescribe("PostgreSQL counter lock order", () => {
  it.scopedLive(
    "a put into a namespace does not wait for an open access flush of that namespace, and counts stay exact",
    () =>
      Effect.gen(function*() {
        const schema = yield* pgScopedSchema("lockorder")
        const context = yield* Layer.build(Cache.layer({
          metadataBackend: "postgres",
          blobs: "postgres",
          postgres: { url: pgUrl, schema },
          cleanupOnOpen: false
        }))
        const cache = Context.get(context, Cache.Cache)
        yield* cache.put({ k: "old" }, "a value", { namespace: "a" })
        yield* cache.put({ k: "other" }, "b value", { namespace: "b" })

        // Another process's flush, held open between its two statements as a busy server may.
        const sql = yield* PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1 }).pipe(
          Effect.provide(Reactivity.layer)
        )
        const holding = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const flush = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          yield* sql.unsafe(`UPDATE ${schema}.cacheness_entries SET hits = hits + 1, accessed_at = accessed_at + 1`)
          yield* Deferred.succeed(holding, undefined)
          yield* Deferred.await(release)
          yield* sql.unsafe(`UPDATE ${schema}.cacheness_counters SET hits = hits + 1 WHERE id = 1`)
        })))
        yield* Deferred.await(holding)

        // The put must finish while the flush is still open: were it waiting on a namespace row
        // the flush holds, it would wait for the flush, which then waits for the totals row.
        const put = yield* Effect.exit(
          cache.put({ k: "new" }, "another value", { namespace: "a" }).pipe(Effect.timeout("30 seconds"))
        )
        yield* Deferred.succeed(release, undefined)
        const flushed = yield* Fiber.await(flush)
        assert.isTrue(Exit.isSuccess(put), `the put finished while the flush was open: ${put}`)
        assert.isTrue(Exit.isSuccess(flushed), `the flush committed: ${flushed}`)

        const a = yield* cache.stats({ namespace: "a" })
        const b = yield* cache.stats({ namespace: "b" })
        const all = yield* cache.stats()
        assert.deepStrictEqual([a.entries, b.entries, all.entries], [2, 1, 3])
        // The counters agree with a recount of the rows.
        const [counted] = yield* sql.unsafe<{ n: number; bytes: number }>(
          `SELECT count(*)::int AS n, coalesce(sum(stored_bytes), 0)::float8 AS bytes FROM ${schema}.cacheness_entries
           WHERE namespace = $1`,
          ["a"]
        )
        assert.strictEqual(a.totalBytes, counted.bytes)
      })
  )
})
