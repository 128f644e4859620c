/**
 * The Promise put and list of issue 21's small-object workload, after two cuts: a put without
 * options shares one checked set of defaults (`readPutOptions`), and the SQLite listing is read
 * one JSON array per column (`entryColumnsJson`, `entriesFromColumns`), with the raw-row fallback
 * transposed into the same columns, seven of them one column (`rest`) that is `0` for a row sharing
 * the values of the listing's first row. These pin down that none of it changes what is stored or listed.
 */
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { graceCheck, readPutOptions } from "../src/cache/write.js"
import { toEntry } from "../src/metadata/entries.js"
import type { EntryRecord, ListOptions } from "../src/metadata/service.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { cacheness } from "../src/promise.js"
import * as Validate from "../src/shared/validate.js"
import { key, record } from "../src/testing/MetadataStoreSuite.js"
import { makeTempDir } from "./support/tmp.js"

const quiet = { cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null } as const

/** `put`'s options as `Validate.fields` reads them: what `readPutOptions` writes out. */
const PUT_SPEC = {
  ttl: Validate.ttl,
  grace: graceCheck,
  namespace: Validate.optionalString,
  description: Validate.optionalString,
  metadata: Validate.record,
  schema: Validate.optionalSchema,
  tags: Validate.optionalTags
}

describe("Promise put: options", () => {
  it("readPutOptions answers what Validate.fields answers, the same first error included", () => {
    const throwing = Object.defineProperty({}, "ttl", {
      enumerable: true,
      get: () => {
        throw new Error("boom")
      }
    })
    const inputs: ReadonlyArray<unknown> = [
      undefined,
      null,
      {},
      { ttl: "1 hour" },
      { ttl: null, grace: 5_000, namespace: "n", description: "d", metadata: {}, tags: ["a", "b"] },
      { ttl: -1 },
      { ttl: -1, tags: 3 },
      { grace: null },
      { namespace: 3, description: 4 },
      { metadata: [] },
      { tags: "a" },
      { tll: 1 },
      { ttl: 1, extra: true },
      "options",
      [1],
      7,
      throwing
    ]
    inputs.forEach((input, i) => {
      assert.deepStrictEqual(readPutOptions(input), Validate.fields("put", input, PUT_SPEC), `input ${i}`)
    })
    // No options share one frozen answer.
    assert.strictEqual(readPutOptions(undefined), readPutOptions(null))
    assert.isTrue(Object.isFrozen(readPutOptions(undefined)))
  })

  it("a put without options after puts with them takes the defaults, and null reads as none", async () => {
    const directory = makeTempDir()
    const cache = cacheness({ ...quiet, directory, defaultTtl: "1 hour" })
    try {
      const before = Date.now()
      await cache.put({ n: 1 }, "a", { ttl: "1 second", namespace: "ns", description: "d", tags: ["t"] })
      await cache.put({ n: 2 }, "b")
      await cache.put({ n: 3 }, "c", { ttl: null, tags: ["u"] })
      await cache.put({ n: 4 }, "d", null as never)
      await cache.put({ n: 5 }, "e")
      const entries = new Map((await cache.list()).map((e) => [(e.params as { n: number }).n, e]))
      assert.deepStrictEqual([...entries.keys()].sort(), [1, 2, 3, 4, 5])
      for (const n of [2, 4, 5]) {
        const entry = entries.get(n)!
        assert.strictEqual(entry.namespace, "", `namespace of ${n}`)
        assert.strictEqual(entry.description, null, `description of ${n}`)
        assert.deepStrictEqual(entry.tags, [], `tags of ${n}`)
        // The cache's default TTL, not another put's.
        assert.isTrue(entry.expiresAt !== null && entry.expiresAt >= before + 3_600_000, `expiry of ${n}`)
      }
      assert.strictEqual(entries.get(1)!.namespace, "ns")
      assert.deepStrictEqual(entries.get(3)!.tags, ["u"])
      assert.strictEqual(entries.get(3)!.expiresAt, null)
      // A bad option is still refused after the defaults were shared.
      const refused = await cache.put({ n: 6 }, "f", { ttl: -1 }).then(() => "stored", (e: { _tag: string }) => e._tag)
      assert.strictEqual(refused, "ConfigError")
      assert.strictEqual(await cache.get({ n: 5 }), "e")
    } finally {
      await cache.close()
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })
})

const ORDERS: ReadonlyArray<ListOptions> = [
  {},
  { descending: true },
  { orderBy: "createdAt" },
  { orderBy: "storedBytes", descending: true },
  { orderBy: "expiresAt" },
  { orderBy: "key", descending: true, limit: 7, offset: 3 },
  { limit: 5 },
  { descending: true, limit: 4, offset: 2 },
  { namespace: "odd" },
  { namespace: "", orderBy: "hits" },
  { tag: "t1" },
  { namespace: "absent" }
]

describe("SQLite listing by columns", () => {
  const setup = (count: number) =>
    Effect.gen(function*() {
      const dir = makeTempDir()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const filename = path.join(dir, "cache.db")
      const store = yield* MetadataStoreSqlite.make({ filename })
      for (let i = 0; i < count; i++) {
        yield* store.upsert(record(key((i * 37) % count), {
          namespace: i % 3 === 0 ? "odd" : "",
          description: i % 4 === 0 ? `d${i}` : null,
          storedBytes: 100 + ((i * 13) % 17),
          createdAt: 1_000 + ((i * 7) % 5),
          expiresAt: i % 2 === 0 ? null : 9_000 + i,
          staleUntil: i % 2 === 0 ? null : 9_500 + i,
          params: JSON.stringify({ i, s: `v,${i}]` }),
          metadata: i % 5 === 0 ? JSON.stringify({ m: i }) : null,
          tags: i % 2 === 0 ? ["t1", `t${i}`] : undefined
        }))
      }
      const same = Effect.fnUntraced(function*(options: ListOptions) {
        const entries = yield* store.listEntries(options)
        assert.deepStrictEqual(entries, (yield* store.list(options)).map(toEntry), JSON.stringify(options))
        return entries
      })
      return { filename, same }
    })

  it.scoped("equals the record listing in every order, page and filter", () =>
    Effect.gen(function*() {
      const { same } = yield* setup(60)
      for (const options of ORDERS) yield* same(options)
      const all = yield* same({})
      assert.strictEqual(all.length, 60)
      // Insertion order: the keys as they were first written.
      assert.deepStrictEqual(all.map((e) => e.key), Array.from({ length: 60 }, (_, i) => key((i * 37) % 60)))
    }))

  it.scoped("an empty store lists nothing", () =>
    Effect.gen(function*() {
      const { same } = yield* setup(0)
      for (const options of ORDERS) assert.deepStrictEqual(yield* same(options), [])
    }))

  it.scoped("rows sharing the first row's namespace, description, format, codec, metadata and tags: the same entries, each its own objects", () =>
    Effect.gen(function*() {
      const dir = makeTempDir()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const filename = path.join(dir, "cache.db")
      const store = yield* MetadataStoreSqlite.make({ filename })
      const shared = {
        namespace: "ns",
        description: "d",
        format: "json",
        codec: "lz4",
        metadata: JSON.stringify({ m: [1] }),
        tags: ["a", "b"],
        expiresAt: 5_000,
        staleUntil: 5_000
      }
      // Each row after the shared ones differs from the first in one field.
      const changes: ReadonlyArray<Partial<EntryRecord>> = [
        {},
        {},
        { namespace: "ns2" },
        { namespace: "" },
        { description: null },
        { description: "d2" },
        { format: "arrow" },
        { codec: "none" },
        { metadata: null },
        { metadata: JSON.stringify({ m: [2] }) },
        { metadata: "{bad" },
        { tags: undefined },
        { tags: ["a"] },
        { staleUntil: 6_000 },
        { expiresAt: 4_000 },
        { expiresAt: null, staleUntil: null },
        {},
        { namespace: "ns", description: null, metadata: null, tags: undefined },
        // Most rows share the values: the listing binds them rather than reading seven columns.
        ...Array.from({ length: 20 }, () => ({}))
      ]
      for (let i = 0; i < changes.length; i++) {
        yield* store.upsert(record(key(i), { ...shared, createdAt: 1_000 + (i % 4), hits: i % 3, ...changes[i] }))
      }
      const same = Effect.fnUntraced(function*(options: ListOptions) {
        const entries = yield* store.listEntries(options)
        assert.deepStrictEqual(entries, (yield* store.list(options)).map(toEntry), JSON.stringify(options))
        return entries
      })
      for (const options of [...ORDERS, { namespace: "ns" }, { namespace: "ns2" }, { tag: "a" }]) yield* same(options)
      const all = yield* same({})
      assert.strictEqual(all.length, changes.length)
      assert.deepStrictEqual(all[1].metadata, { m: [1] })
      assert.deepStrictEqual(all[1].tags, ["a", "b"])
      assert.strictEqual(all[1].staleUntil, 5_000)
      // Shared values, but no shared objects: changing one entry's changes no other's.
      assert.notStrictEqual(all[0].metadata, all[1].metadata)
      assert.notStrictEqual(all[0].tags, all[1].tags)
      assert.notStrictEqual(all[1].tags, all[16].tags)
      // The first row unreadable as shared values (a BLOB description), then its metadata a REAL (stored as text).
      const db = new Database(filename)
      db.prepare("UPDATE cacheness_entries SET description = X'00ff10' WHERE key = ?").run(key(0))
      for (const options of ORDERS) yield* same(options)
      db.prepare("UPDATE cacheness_entries SET description = 'd', metadata = 1.5 WHERE key = ?").run(key(0))
      db.close()
      for (const options of ORDERS) yield* same(options)
      assert.strictEqual((yield* same({}))[0].metadata as unknown, 1.5)
      // Most rows with a description of their own: the next listings read the seven as columns.
      const db2 = new Database(filename)
      db2.prepare("UPDATE cacheness_entries SET description = key WHERE rowid % 4 <> 0").run()
      db2.close()
      for (const options of [...ORDERS, {}, { namespace: "ns" }]) yield* same(options)
    }))

  it.scoped("a BLOB in a column JSON cannot hold is read through the raw rows, the same entries", () =>
    Effect.gen(function*() {
      const { filename, same } = yield* setup(20)
      const db = new Database(filename)
      db.prepare("UPDATE cacheness_entries SET description = X'00ff10' WHERE key = ?").run(key(3))
      db.prepare("UPDATE cacheness_entries SET created_at = 'late' WHERE key = ?").run(key(5))
      db.close()
      for (const options of ORDERS) yield* same(options)
      const all = yield* same({})
      assert.strictEqual(all.length, 20)
      assert.deepStrictEqual(all.find((e) => e.key === key(3))!.description as unknown, Buffer.from([0, 0xff, 0x10]))
    }))
})
