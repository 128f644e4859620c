// Batches beyond the contract suites: putMany's atomicity when the metadata transaction itself
// fails after the blobs were written (no orphan files), one metadata query per getMany, signed
// caches, and the size limit.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import { BlobStore, Cache, Codec, Hasher, MetadataStore } from "../src/index.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { listFiles, tempDir } from "./support/tmp.js"

const Runs = Cache.metadataTable("runs", Schema.Struct({ run_id: Schema.String }), { unique: ["run_id"] })
const manual = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

for (const metadataBackend of ["sqlite", "json"] as const) {
  describe(`putMany on ${metadataBackend} + files`, () => {
    it.scopedLive("a row breaking a constraint fails the batch: nothing stored, no blob left behind", () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: "existing" }, incompressible(30_000), { metadata: { runs: { run_id: "r1" } } })
          const blobsBefore = listFiles(path.join(directory, "blobs"))
          const before = yield* cache.stats()
          const error = yield* Effect.flip(cache.putMany([
            [{ k: "z" }, incompressible(30_000), { tags: ["x"] }],
            [{ k: "a" }, incompressible(30_000), { metadata: { runs: { run_id: "r2" } } }],
            [{ k: "b" }, incompressible(30_000)],
            // Same run_id as `existing`: the store refuses it inside the transaction.
            [{ k: "c" }, incompressible(30_000), { metadata: { runs: { run_id: "r1" } } }]
          ]))
          assert.strictEqual(error._tag, "MetadataError")
          assert.strictEqual((error as any).reason, "InvalidRow")
          const after = yield* cache.stats()
          assert.deepStrictEqual([after.entries, after.totalBytes], [before.entries, before.totalBytes])
          assert.deepStrictEqual(listFiles(path.join(directory, "blobs")), blobsBefore)
          for (const k of ["a", "b", "c", "z"]) assert.isFalse(yield* cache.has({ k }))
          assert.strictEqual((yield* cache.list({ tag: "x" })).length, 0)
          assert.strictEqual((yield* cache.queryMetadata(Runs)).length, 1)
          // The same batch without the clash goes through, rows and all.
          const keys = yield* cache.putMany([
            [{ k: "a" }, incompressible(30_000), { metadata: { runs: { run_id: "r2" } } }],
            [{ k: "b" }, "small"]
          ])
          assert.strictEqual(keys.length, 2)
          assert.strictEqual((yield* cache.queryMetadata(Runs)).length, 2)
          assert.deepStrictEqual((yield* cache.verify()).dangling, [])
        }).pipe(Effect.provide(Cache.layer({ directory, metadataBackend, metadataTables: [Runs], ...manual })))
      }))
  })
}

describe("getMany", () => {
  it.effect("asks the metadata store once per batch", () => {
    const calls: Array<string> = []
    const Counting = Layer.effect(
      MetadataStore.MetadataStore,
      Effect.map(MetadataStore.MetadataStore, (inner) => ({
        ...inner,
        unsafeProbe: (key: string) => (calls.push("unsafeProbe"), inner.unsafeProbe(key)),
        probe: (key: string) => (calls.push("probe"), inner.probe(key)),
        lookup: (key: string) => (calls.push("lookup"), inner.lookup(key)),
        probeMany: (keys: ReadonlyArray<string>) => (calls.push(`probeMany ${keys.length}`), inner.probeMany(keys)),
        lookupMany: (keys: ReadonlyArray<string>) => (calls.push(`lookupMany ${keys.length}`), inner.lookupMany(keys))
      }))
    ).pipe(Layer.provide(MetadataStore.layerMemory()))
    const layer = Cache.layerFromServices().pipe(
      Layer.provide(Layer.mergeAll(Hasher.layer, Codec.layer(), Counting, BlobStore.layerMemory()))
    )
    return Effect.gen(function*() {
      const cache = yield* Cache.Cache
      const inputs = Array.from({ length: 50 }, (_, i) => ({ i }))
      yield* cache.putMany(inputs.map((input, i) => [input, i % 10 === 0 ? incompressible(30_000) : i] as const))
      calls.length = 0
      const found = yield* cache.getMany([...inputs, { i: 999 }])
      assert.deepStrictEqual(calls, ["probeMany 51"])
      assert.strictEqual(found.filter(Option.isSome).length, 50)
      assert.isTrue(Option.isNone(found[50]))
      assert.strictEqual(
        (found[20] as Option.Some<unknown>).value,
        (yield* cache.get({ i: 20 })).pipe(Option.getOrThrow)
      )
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("a signed cache reads whole rows in one query and rejects a forged one", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const keys = yield* cache.putMany([[{ s: 1 }, "one"], [{ s: 2 }, incompressible(30_000)], [{ s: 3 }, 3]])
        const sql = yield* cache.sql
        // Rewriting a signed field without the key: that entry no longer verifies.
        yield* sql.unsafe(`UPDATE cacheness_entries SET expires_at = 99999999999999 WHERE key = '${keys[2]}'`)
        const found = yield* cache.getMany(keys)
        assert.deepStrictEqual(found[0], Option.some("one"))
        assert.isTrue(Option.isSome(found[1]))
        assert.isTrue(Option.isNone(found[2]))
      }).pipe(Effect.provide(Cache.layer({ directory, signing: { key: "batch-signing-key-0123456789abcdef" } })))
    }))
})

describe("putMany and the size limit", () => {
  it.scopedLive("a batch over the limit is refused whole; within it, eviction runs once after the batch", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const error = yield* Effect.flip(
          cache.putMany(Array.from({ length: 10 }, (_, i) => [{ i }, incompressible(20_000)] as const))
        )
        assert.strictEqual(error._tag, "StorageError")
        assert.strictEqual((error as any).reason, "TooLarge")
        assert.strictEqual((yield* cache.stats()).entries, 0)
        assert.deepStrictEqual(listFiles(path.join(directory, "blobs")), [])
        for (let round = 0; round < 3; round++) {
          yield* cache.putMany(Array.from({ length: 3 }, (_, i) => [{ round, i }, incompressible(20_000)] as const))
        }
        const stats = yield* cache.stats()
        assert.isTrue(stats.totalBytes <= 100_000 * 0.8, `total ${stats.totalBytes}`)
        assert.isTrue(yield* cache.has({ round: 2, i: 2 }), "the newest batch is kept")
        assert.deepStrictEqual((yield* cache.verify()).orphans, [])
      }).pipe(Effect.provide(Cache.layer({ directory, maxSize: 100_000, ...manual })))
    }))
})

for (const metadataBackend of ["sqlite", "json"] as const) {
  describe(`putMany's synchronous path on ${metadataBackend}`, () => {
    it.scopedLive("stores what put stores; a key repeated in a batch keeps its last version and its tags only", () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const odd = { tags: ["odd"] }
          // More entries than one statement's chunk, one options object shared, a repeated key.
          const entries: Array<readonly [object, unknown, object?]> = Array.from(
            { length: 120 },
            (_, i) => [{ i }, { v: i }, i % 2 === 1 ? odd : undefined] as const
          )
          entries.push([{ i: 5 }, { v: "again" }, { tags: ["again"] }])
          entries.push([{ i: 6 }, { v: "ns" }, { namespace: "ns", description: "in ns" }])
          entries.push([{ i: 7 }, new Uint8Array([1, 2, 3])])
          const keys = yield* cache.putMany(entries as any)
          assert.strictEqual(keys.length, 123)
          assert.strictEqual(keys[5], keys[120])
          assert.notStrictEqual(keys[6], keys[121])
          assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ i: 5 })), { v: "again" })
          assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ i: 6 })), { v: 6 })
          assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ i: 6 }, { namespace: "ns" })), { v: "ns" })
          assert.deepStrictEqual(Option.getOrNull(yield* cache.get({ i: 7 })), new Uint8Array([1, 2, 3]))
          // 60 odd keys, of which 5 (retagged) and 7 (untagged) were put again.
          assert.strictEqual((yield* cache.list({ tag: "odd" })).length, 58)
          assert.deepStrictEqual((yield* cache.list({ tag: "again" })).map((e) => e.key), [keys[5]])
          assert.strictEqual((yield* cache.stats()).entries, 121)
          // The same entry through put: the same row but for the key and the times.
          yield* cache.put({ j: 1 }, { v: 1 }, odd)
          const all = yield* cache.list()
          const fromBatch = all.find((e) => e.key === keys[1])!
          const fromPut = all.find((e) => e.params?.j !== undefined)!
          const strip = (
            { accessedAt: _a, createdAt: _c, expiresAt: _e, key: _k, params: _p, staleUntil: _s, ...rest }: any
          ) => rest
          assert.deepStrictEqual(strip(fromBatch), strip(fromPut))
          assert.isNotNull(fromBatch.params)
          const report = yield* cache.verify()
          assert.deepStrictEqual([report.checksumMismatches, report.sizeMismatches, report.dangling], [[], [], []])
          assert.strictEqual(report.checked, 122)
        }).pipe(Effect.provide(Cache.layer({ directory, metadataBackend, ...manual })))
      }))
  })
}
