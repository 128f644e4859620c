/**
 * PostgreSQL's `upsertMany` writes a batch in one multi-row statement per chunk of entries (one
 * round trip and one run of the statement-level counter triggers per chunk, not per entry), in one
 * transaction: a key given twice still ends with its last value and the earlier blob reported,
 * tags and counts stay exact, and a failing entry stores none.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as MetadataStorePg from "../src/metadata/pg.js"
import { MetadataStore } from "../src/metadata/service.js"
import type { EntryRecord } from "../src/metadata/service.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"

const record = (key: string, over: Partial<EntryRecord> = {}): EntryRecord => ({
  key,
  namespace: "",
  description: null,
  format: "json",
  codec: "none",
  storedBytes: 10,
  rawBytes: 10,
  checksum: "0123456789abcdef",
  blobId: null,
  inline: new Uint8Array(10),
  createdAt: 1,
  accessedAt: 1,
  expiresAt: null,
  staleUntil: null,
  hits: 0,
  params: null,
  metadata: null,
  ...over
})

pgDescribe("PostgreSQL upsertMany", () => {
  it.scopedLive(
    "one INSERT statement per chunk; duplicates, tags, blobs and counts as entry by entry",
    () =>
      Effect.gen(function*() {
        const schema = yield* pgScopedSchema("upsertmany")
        const context = yield* Layer.build(MetadataStorePg.layer({ url: pgUrl, schema }))
        const store = Context.get(context, MetadataStore)
        const sql = yield* PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1 }).pipe(
          Effect.provide(Reactivity.layer)
        )
        // Counts the INSERT statements run on the entries table (statement-level, as the store's own triggers).
        yield* sql.unsafe(`CREATE TABLE ${schema}.probe_statements (n integer NOT NULL)`)
        yield* sql.unsafe(`INSERT INTO ${schema}.probe_statements VALUES (0)`)
        yield* sql.unsafe(`CREATE FUNCTION ${schema}.probe_count() RETURNS trigger AS $$
        BEGIN UPDATE ${schema}.probe_statements SET n = n + 1; RETURN NULL; END $$ LANGUAGE plpgsql`)
        yield* sql.unsafe(`CREATE TRIGGER probe_count AFTER INSERT ON ${schema}.cacheness_entries
        FOR EACH STATEMENT EXECUTE FUNCTION ${schema}.probe_count()`)
        const statements = Effect.map(
          sql.unsafe<{ n: number }>(`SELECT n FROM ${schema}.probe_statements`),
          (rows) => Number(rows[0]!.n)
        )

        yield* store.upsert(record("old-blob", { blobId: "b-old", inline: null, storedBytes: 1000 }))
        yield* store.upsert(record("tagged", { tags: ["a", "b"] }))
        const before = yield* statements

        const items = Array.from({ length: 1_200 }, (_, i) => ({ record: record(`k${i}`, { storedBytes: 10 + i }) }))
        // An overwrite of a blob entry, a key given twice (its first version has a blob), a retag.
        items.push({ record: record("old-blob") })
        items.push({ record: record("twice", { blobId: "b-first", inline: null, storedBytes: 500 }) })
        items.push({ record: record("twice", { storedBytes: 7 }) })
        items.push({ record: record("tagged", { tags: ["b", "c"] }) })
        const result = yield* store.upsertMany(items)

        // 1,204 entries: chunks of 500, and "twice" again starts a new chunk — 4 statements, not 1,204.
        assert.strictEqual((yield* statements) - before, 4)
        assert.deepStrictEqual([...result.replacedBlobIds].sort(), ["b-first", "b-old"])
        const totals = yield* store.totals
        const expected = items.slice(0, 1_200).reduce((n, item) => n + item.record.storedBytes, 0) + 10 + 7 + 10
        assert.strictEqual(totals.totalBytes, expected)
        assert.strictEqual(totals.entries, 1_203)
        assert.strictEqual(result.totalBytes, expected)
        const twice = yield* store.lookup("twice")
        assert.isTrue(Option.isSome(twice))
        assert.strictEqual(Option.getOrThrow(twice).storedBytes, 7)
        assert.strictEqual(Option.getOrThrow(twice).blobId, null)
        assert.deepStrictEqual(Option.getOrThrow(yield* store.lookup("tagged")).tags, ["b", "c"])
        const tagRows = yield* sql.unsafe<{ tag: string }>(
          `SELECT tag FROM ${schema}.cacheness_tags WHERE key = 'tagged' ORDER BY tag`
        )
        assert.deepStrictEqual(tagRows.map((r) => r.tag), ["b", "c"])
        assert.strictEqual(Option.getOrThrow(yield* store.lookup("k1199")).storedBytes, 1_209)

        // All or nothing: an entry the table refuses (a NULL format) fails the batch, none stored.
        const bad = [{ record: record("new-1") }, { record: record("new-2", { format: null as any }) }]
        const error = yield* Effect.flip(store.upsertMany(bad))
        assert.strictEqual(error._tag, "MetadataError")
        assert.isTrue(Option.isNone(yield* store.lookup("new-1")))
        assert.strictEqual((yield* store.totals).entries, 1_203)
      }),
    60_000
  )
})
