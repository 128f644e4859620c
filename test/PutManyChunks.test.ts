// putMany's synchronous path: small entries are prepared inside the metadata transaction a chunk at
// a time (`unsafeUpsertMany`). Batches larger than a chunk, with what makes the path give up (an
// entry that fails to encode, one with a blob) after the first chunks were written, and a memory
// tier that must see the batch.
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as path from "node:path"
import { Cache, MetadataStore } from "../src/index.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { key, record } from "../src/testing/MetadataStoreSuite.js"
import { listFiles, tempDir } from "./support/tmp.js"

const manual = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

/** More entries than two of the SQLite store's chunks (256). */
const COUNT = 700

const small = (i: number) => [{ i }, { v: i }] as const

for (const metadataBackend of ["sqlite", "json"] as const) {
  describe(`putMany beyond a chunk on ${metadataBackend}`, () => {
    it.scopedLive("an entry that cannot be stored, after two chunks were written, fails the batch: none stored", () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ i: 3 }, "before")
          const before = yield* cache.stats()
          const entries: Array<readonly [object, unknown]> = Array.from({ length: COUNT }, (_, i) => small(i))
          // A function: no codec stores it (a typed CodecError), found only when its turn comes.
          entries[600] = [{ i: 600 }, { f: () => 1 }]
          const error = yield* Effect.flip(cache.putMany(entries as any))
          assert.strictEqual(error._tag, "CodecError")
          const after = yield* cache.stats()
          assert.deepStrictEqual([after.entries, after.totalBytes], [before.entries, before.totalBytes])
          assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ i: 3 })), "before")
          for (const i of [0, 255, 256, 599, 699]) assert.isFalse(yield* cache.has({ i }), `entry ${i}`)
        }).pipe(Effect.provide(Cache.layer({ directory, metadataBackend, ...manual })))
      }))

    it.scopedLive("a blob-sized entry after the first chunk: every entry stored, its blob written once", () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const large = incompressible(30_000)
          const entries: Array<readonly [object, unknown]> = Array.from({ length: COUNT }, (_, i) => small(i))
          entries[400] = [{ i: 400 }, large]
          // A key given again in a later chunk: its last version wins.
          entries[650] = [{ i: 10 }, "again"]
          const keys = yield* cache.putMany(entries as any)
          assert.strictEqual(keys.length, COUNT)
          assert.strictEqual(keys[10], keys[650])
          assert.strictEqual((yield* cache.stats()).entries, COUNT - 1)
          assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ i: 400 })), large)
          assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ i: 10 })), "again")
          assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ i: 699 })), { v: 699 })
          assert.strictEqual(listFiles(path.join(directory, "blobs")).length, 1)
          const report = yield* cache.verify()
          assert.deepStrictEqual([report.orphans, report.dangling, report.checksumMismatches], [[], [], []])
        }).pipe(Effect.provide(Cache.layer({ directory, metadataBackend, ...manual })))
      }))

    it.scopedLive("inline entries replacing blobs across chunks: the old blobs are deleted", () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          for (const i of [5, 300, 690]) yield* cache.put({ i }, incompressible(30_000))
          assert.strictEqual(listFiles(path.join(directory, "blobs")).length, 3)
          yield* cache.putMany(Array.from({ length: COUNT }, (_, i) => small(i)))
          assert.deepStrictEqual(listFiles(path.join(directory, "blobs")), [])
          for (const i of [5, 300, 690]) assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ i })), { v: i })
          assert.deepStrictEqual((yield* cache.verify()).dangling, [])
        }).pipe(Effect.provide(Cache.layer({ directory, metadataBackend, ...manual })))
      }))
  })
}

describe("putMany and the memory tier", () => {
  it.scopedLive("a value the tier holds is replaced by a batch: the next get sees the batch's value", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        yield* cache.put({ held: 1 }, "old")
        // Held by the tier, trusted for a minute without rereading the change count.
        assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ held: 1 })), "old")
        assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ held: 1 })), "old")
        yield* cache.putMany([[{ held: 1 }, "new"], [{ held: 2 }, "other"]])
        assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ held: 1 })), "new")
        assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ held: 1 })), "new")
        // The same through the effectful path (a blob to write first).
        const large = incompressible(30_000)
        yield* cache.putMany([[{ held: 1 }, "newer"], [{ held: 3 }, large]])
        assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ held: 1 })), "newer")
      }).pipe(Effect.provide(Cache.layer({ directory, memory: { maxStaleness: "1 minute" }, ...manual })))
    }))
})

describe("unsafeUpsertMany on SQLite", () => {
  it.scopedLive("makes each entry just before its row, a chunk at a time, inside the one transaction", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const context = yield* Layer.build(MetadataStore.layerSqlite({ filename: path.join(directory, "m.db") }))
      const store = Context.get(context, MetadataStore.MetadataStore)
      // When entry i is made, the rows already written (the same connection sees them uncommitted).
      const writtenBefore: Array<number> = []
      const written = store.unsafeUpsertMany(COUNT, (i) => {
        let rows = 0
        for (const j of [0, 255, 256, 511, 512]) if (store.unsafeProbe(key(j)) !== null) rows++
        writtenBefore[i] = rows
        return { record: record(key(i), { storedBytes: 10 }) }
      })
      assert.deepStrictEqual(written, { replacedBlobIds: [], totalBytes: COUNT * 10 })
      // Not all made first: entry 256 after the first chunk's rows, 512 after the second's.
      assert.deepStrictEqual([writtenBefore[0], writtenBefore[255], writtenBefore[256], writtenBefore[512]], [
        0,
        0,
        2,
        4
      ])
      assert.strictEqual((yield* store.totals).entries, COUNT)
    }))
})
