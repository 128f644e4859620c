// PostgreSQL blobs: reads on pooled connections that were terminated (pg_terminate_backend, as an
// administrator or a restart does) are retried on a fresh connection, with the same Schedule as
// metadata reads — before the fix each such blob read failed with `StorageError` ReadFailed.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as BlobStorePg from "../src/blob/pg.js"
import * as Cache from "../src/Cache.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"

/** Terminates every idle connection of the blob store's pool on `schema`; how many. */
const killIdleBlobConnections = (schema: string) =>
  Effect.gen(function*() {
    const admin = yield* PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1 }).pipe(
      Effect.provide(Reactivity.layer)
    )
    const idle = yield* admin.unsafe<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'cacheness' AND state = 'idle' AND query ILIKE '%${schema}.%'`
    )
    yield* Effect.forEach(idle, ({ pid }) => admin.unsafe(`SELECT pg_terminate_backend(${pid})`), { discard: true })
    return idle.length
  }).pipe(Effect.scoped)

pgDescribe("PostgreSQL blobs: connection terminated", () => {
  it.scopedLive("BlobStorePg get, has and list are retried on a fresh connection", () =>
    Effect.gen(function*() {
      const schema = yield* pgScopedSchema("blobkill")
      const store = yield* BlobStorePg.make({ url: pgUrl, schema, maxConnections: 2 })
      const id = "0123456789abcdef-v1"
      const bytes = new Uint8Array(3000).map((_, i) => i & 0xff)
      yield* store.put(id, bytes)
      for (const read of ["get", "has", "list"] as const) {
        // Leaves pooled connections idle, then kills them under the next read.
        yield* Effect.all([store.get(id), store.get(id)], { concurrency: 2 })
        assert.isAbove(yield* killIdleBlobConnections(schema), 0, "the store has idle connections to kill")
        if (read === "get") assert.deepStrictEqual(yield* store.get(id), Option.some(bytes))
        if (read === "has") assert.isTrue(yield* store.has(id))
        if (read === "list") assert.deepStrictEqual(yield* store.list, [id])
      }
    }), 60_000)

  it.scopedLive(
    "Cache on PostgreSQL blobs: gets after 10 termination rounds all succeed",
    () =>
      Effect.gen(function*() {
        const schema = yield* pgScopedSchema("blobkill")
        const context = yield* Layer.build(Cache.layer({
          metadataBackend: "postgres",
          blobs: "postgres",
          postgres: { url: pgUrl, schema },
          cleanupOnOpen: false,
          cleanupInterval: "100000 days",
          maxSize: null
        }))
        const cache = Context.get(context, Cache.Cache)
        const values = Array.from({ length: 4 }, (_, i) => incompressible(30_000 + i))
        for (let i = 0; i < values.length; i++) yield* cache.put({ k: i }, values[i])
        let killed = 0
        for (let round = 0; round < 10; round++) {
          yield* Effect.forEach(values, (_, i) => cache.get({ k: i }), { concurrency: "unbounded" })
          killed += yield* killIdleBlobConnections(schema)
          const got = yield* Effect.forEach(values, (_, i) => cache.get({ k: i }), { concurrency: "unbounded" })
          assert.deepStrictEqual(got, values.map(Option.some), `round ${round}`)
        }
        assert.isAbove(killed, 0)
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
