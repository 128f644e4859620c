// Each service's make(impl) fills in the derived and optional members, and the public layers are
// the stores the contract suites test.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { BlobStore, Codec, Hasher, MetadataStore } from "../src/index.js"
import { toEntry } from "../src/metadata/entries.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import { NotSync } from "../src/shared/sync.js"
import { blobStoreSuite, metadataStoreSuite } from "../src/testing.js"
import { key, record } from "../src/testing/MetadataStoreSuite.js"
import { makeTempDir } from "./support/tmp.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(makeTempDir),
  (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
)

/** A blob store of the four primitives only, in a Map. */
const minimalBlobs = () => {
  const blobs = new Map<string, Uint8Array>()
  return BlobStore.make({
    backend: "minimal",
    put: (id, bytes) => Effect.sync(() => void blobs.set(id, new Uint8Array(bytes))),
    get: (id) => Effect.sync(() => Option.map(Option.fromNullable(blobs.get(id)), (b) => new Uint8Array(b))),
    delete: (id) => Effect.sync(() => blobs.delete(id)),
    list: Effect.sync(() => [...blobs.keys()])
  })
}

const DERIVED = [
  "probe",
  "unsafeProbe",
  "removeCounted",
  "listEntries",
  "unsafeRecordAccess",
  "repairSize",
  "recount",
  "sql",
  "changeCount"
] as const

/** The memory store with every derived member taken away, rebuilt through `make`. */
const minimalMetadata = Effect.map(MetadataStoreMemory.make(), (full) => {
  const impl: Record<string, unknown> = { ...full, backend: "minimal" }
  for (const name of DERIVED) delete impl[name]
  return MetadataStore.make(impl as unknown as MetadataStore.Impl)
})

describe("BlobStore.make", () => {
  it.effect("fills in has, clear and location", () =>
    Effect.gen(function*() {
      const store = minimalBlobs()
      assert.strictEqual(store.location, null)
      yield* store.put("a", new Uint8Array([1]))
      yield* store.put("b", new Uint8Array([2]))
      assert.isTrue(yield* store.has("a"))
      assert.isFalse(yield* store.has("c"))
      assert.strictEqual(yield* store.clear, 2)
      assert.deepStrictEqual(yield* store.list, [])
      assert.isFalse(yield* store.has("a"))
    }))

  it.effect("keeps what the implementer gives, even beside undefined members", () =>
    Effect.gen(function*() {
      const store = BlobStore.make({
        backend: "given",
        location: "/somewhere",
        put: () => Effect.void,
        get: () => Effect.succeed(Option.none()),
        delete: () => Effect.succeed(false),
        list: Effect.succeed([]),
        has: () => Effect.succeed(true),
        clear: undefined
      })
      assert.strictEqual(store.location, "/somewhere")
      assert.isTrue(yield* store.has("x"))
      assert.strictEqual(yield* store.clear, 0)
    }))
})

describe("MetadataStore.make", () => {
  it.effect("derives probe, removeCounted, listEntries, recount and sql; fast paths answer NotSync", () =>
    Effect.gen(function*() {
      const store = yield* minimalMetadata
      yield* store.upsert(record(key(1), { blobId: `${key(1)}-b`, inline: null }))
      yield* store.upsert(record(key(2), { params: "{\"a\":1}" }))
      const probed = Option.getOrThrow(yield* store.probe(key(1)))
      assert.deepStrictEqual(Object.keys(probed).sort(), [
        "blobId",
        "checksum",
        "expiresAt",
        "inline",
        "key",
        "staleUntil",
        "storedBytes"
      ])
      assert.strictEqual(probed.blobId, `${key(1)}-b`)
      assert.isTrue(Option.isNone(yield* store.probe(key(9))))
      assert.strictEqual(store.unsafeProbe(key(1)), NotSync)
      assert.strictEqual(store.unsafeRecordAccess(key(1), 0), NotSync)
      assert.strictEqual(store.changeCount(), NotSync)
      assert.strictEqual(store.sql, null)
      assert.deepStrictEqual(
        yield* store.listEntries({ orderBy: "key" }),
        (yield* store.list({ orderBy: "key" })).map(toEntry)
      )
      assert.deepStrictEqual(yield* store.recount, yield* store.totals)
      const repaired = yield* Effect.either(store.repairSize(key(2), null, "c", 5))
      assert.isTrue(Either.isLeft(repaired) && repaired.left.reason === "Unsupported")
      assert.deepStrictEqual(yield* store.removeCounted({}), { removed: 2, blobIds: [`${key(1)}-b`] })
    }))

  it.effect("keeps the store's own fast paths", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStoreMemory.make()
      yield* store.upsert(record(key(1)))
      assert.notStrictEqual(store.unsafeProbe(key(1)), NotSync)
      assert.strictEqual(store.unsafeProbe(key(2)), null)
      assert.strictEqual(typeof store.changeCount(), "number")
    }))
})

describe("Hasher.make", () => {
  it.effect("without unsafeKey, the fast path answers NotSync", () =>
    Effect.gen(function*() {
      const real = yield* Effect.provide(Hasher.Hasher, Hasher.layer)
      const hasher = Hasher.make({
        key: real.key,
        describe: real.describe,
        hashBytes: real.hashBytes,
        hashPath: real.hashPath
      })
      assert.strictEqual(hasher.unsafeKey({ a: 1 }), NotSync)
      assert.strictEqual(real.unsafeKey({ a: 1 }), yield* hasher.key({ a: 1 }))
    }))
})

describe("Codec.make and Codec.makeHandler", () => {
  it.effect("Codec.make: unsafeDecode answers NotSync, retainsBytes true", () =>
    Effect.gen(function*() {
      const real = yield* Effect.provide(Codec.Codec, Codec.layer())
      const codec = Codec.make({ encode: real.encode, decode: real.decode, inspect: real.inspect })
      const encoded = yield* codec.encode({ a: 1 })
      assert.strictEqual(codec.unsafeDecode(encoded.bytes), NotSync)
      assert.isTrue(codec.retainsBytes(encoded.bytes))
      assert.deepStrictEqual(real.unsafeDecode(encoded.bytes), { a: 1 })
      assert.deepStrictEqual(yield* codec.decode(encoded.bytes), { a: 1 })
    }))

  it.effect("makeHandler derives the effectful decode from the plain one", () =>
    Effect.gen(function*() {
      const handler = Codec.makeHandler({
        format: "text",
        version: 1,
        kind: "object",
        guard: (u): u is string => typeof u === "string",
        encode: (s) => Effect.succeed(new TextEncoder().encode(s)),
        decode: (payload) => {
          if (payload.byteLength === 0) throw new Error("empty")
          return new TextDecoder().decode(payload)
        }
      })
      assert.strictEqual(handler.decodeSync?.(new Uint8Array([104, 105]), 1), "hi")
      assert.strictEqual(yield* handler.decode(new Uint8Array([104, 105]), 1), "hi")
      const failed = yield* Effect.flip(handler.decode(new Uint8Array(0), 1))
      assert.strictEqual(failed.reason, "Corrupt")
      assert.strictEqual(failed.format, "text")
      assert.strictEqual(failed.message.includes("text payload does not decode: empty"), true)
    }))

  it.effect("makeHandler with decodeEffect only has no synchronous decode", () =>
    Effect.gen(function*() {
      const handler = Codec.makeHandler({
        format: "later",
        version: 1,
        kind: "object",
        guard: (u): u is string => typeof u === "string",
        encode: (s) => Effect.succeed(new TextEncoder().encode(s)),
        decodeEffect: (payload) => Effect.succeed(new TextDecoder().decode(payload))
      })
      assert.strictEqual(handler.decodeSync, undefined)
      assert.strictEqual(yield* handler.decode(new Uint8Array([104]), 1), "h")
    }))
})

describe("public layers", () => {
  it.effect("unknown or missing options are a ConfigError", () =>
    Effect.gen(function*() {
      const fails = <A, E>(layer: Layer.Layer<A, E>) => Effect.flip(Layer.build(layer).pipe(Effect.scoped))
      const bad = [
        yield* fails(MetadataStore.layerSqlite({ filename: "x.db", tll: 1 } as any)),
        yield* fails(MetadataStore.layerJson({} as any)),
        yield* fails(MetadataStore.layerPg({ url: 5 } as any)),
        yield* fails(BlobStore.layerFileSystem({ directory: "d", private: true } as any)),
        yield* fails(BlobStore.layerPg({ url: "postgres://x", schema: 1 } as any)),
        yield* fails(Codec.layer({ tables: "csv" } as any))
      ]
      for (const error of bad) assert.strictEqual((error as { _tag: string })._tag, "ConfigError")
    }))

  it("the namespaces hold the tags the stores provide", () => {
    assert.strictEqual(MetadataStore.MetadataStore.key, "cacheness/MetadataStore")
    assert.strictEqual(BlobStore.BlobStore.key, "cacheness/BlobStore")
    assert.strictEqual(Hasher.Hasher.key, "cacheness/Hasher")
    assert.strictEqual(Codec.Codec.key, "cacheness/Codec")
    assert.strictEqual(typeof Codec.handler, "function")
  })
})

metadataStoreSuite(
  "MetadataStore.make over the memory store's primitives",
  Layer.effect(MetadataStore.MetadataStore, minimalMetadata)
)
metadataStoreSuite("MetadataStore.layerMemory()", MetadataStore.layerMemory())
metadataStoreSuite(
  "MetadataStore.layerSqlite",
  Layer.unwrapScoped(Effect.map(tempDir, (dir) => MetadataStore.layerSqlite({ filename: path.join(dir, "cache.db") })))
)
metadataStoreSuite(
  "MetadataStore.layerJson",
  Layer.unwrapScoped(
    Effect.map(tempDir, (dir) => MetadataStore.layerJson({ filename: path.join(dir, "cacheness.json") }))
  )
)
blobStoreSuite("BlobStore.layerMemory()", BlobStore.layerMemory())
blobStoreSuite(
  "BlobStore.layerFileSystem",
  Layer.unwrapScoped(Effect.map(tempDir, (directory) => BlobStore.layerFileSystem({ directory })))
)

describe("the synchronous encode and describe fast paths", () => {
  it.effect("Hasher.unsafeDescribe is describe without effects; NotSync without it or on bad input", () =>
    Effect.gen(function*() {
      const real = yield* Effect.provide(Hasher.Hasher, Hasher.layer)
      const hasher = Hasher.make({
        key: real.key,
        describe: real.describe,
        hashBytes: real.hashBytes,
        hashPath: real.hashPath
      })
      const params = { a: 1, b: [true, "x"], c: new Uint8Array([1, 2]) }
      assert.deepStrictEqual(real.unsafeDescribe(params), yield* real.describe(params))
      assert.strictEqual(hasher.unsafeDescribe(params), NotSync)
      assert.strictEqual(real.unsafeDescribe([1] as any), NotSync)
    }))

  it.effect("Codec.unsafeEncode gives the bytes encode gives for the built-in formats, NotSync otherwise", () =>
    Effect.gen(function*() {
      const real = yield* Effect.provide(Codec.Codec, Codec.layer())
      const values = [{ a: 1 }, new Map([[1, 2]]), new Uint8Array([1, 2, 3]), Buffer.from("b"), "x".repeat(5000)]
      for (const value of values) {
        const sync = real.unsafeEncode(value)
        assert.notStrictEqual(sync, NotSync)
        assert.deepStrictEqual(sync, yield* real.encode(value))
      }
      // What encode refuses, the fast path leaves to it (which reports why).
      assert.strictEqual(real.unsafeEncode({ f: () => 1 }), NotSync)
      assert.strictEqual((yield* Effect.flip(real.encode({ f: () => 1 })))._tag, "CodecError")
      const codec = Codec.make({ encode: real.encode, decode: real.decode, inspect: real.inspect })
      assert.strictEqual(codec.unsafeEncode({ a: 1 }), NotSync)
    }))
})
