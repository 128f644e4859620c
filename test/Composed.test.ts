// A cache composed from parts: `Cache.layerFromServices()` over the stores a user picks or
// writes, holding values where the parts say: small ones inline in the metadata, large ones as
// blobs in the BlobStore given. Both compositions also pass the published cache contract.
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as path from "node:path"
import { BlobStore, Cache, Codec, Hasher, MetadataStore } from "../src/index.js"
import { cacheSuite } from "../src/testing.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { listFiles, tempDir } from "./support/tmp.js"

/** Memory metadata + blobs as files under `directory`, with the default Hasher and Codec. */
const memoryAndFiles = (directory: string) =>
  Layer.mergeAll(Hasher.layer, Codec.layer(), MetadataStore.layerMemory(), BlobStore.layerFileSystem({ directory }))

/** What a user-written BlobStore saw: one line per call naming an id, e.g. "put 0123…-v1". */
interface Calls {
  readonly log: Array<string>
}

/** A user's BlobStore: blobs in a Map, every call on an id written to `calls`; `make` adds the rest. */
const countingBlobStore = (calls: Calls): BlobStore.Service => {
  const blobs = new Map<string, Uint8Array>()
  const on = <A>(method: string, id: string, f: () => A) =>
    /^[0-9a-f]{16}-[0-9a-z]{1,64}$/.test(id)
      ? Effect.sync(() => {
        calls.log.push(`${method} ${id}`)
        return f()
      })
      : Effect.fail(new BlobStore.StorageError({ reason: "InvalidId", method, id, description: "not a blob id" }))
  return BlobStore.make({
    backend: "counting",
    put: (id, bytes) => on("put", id, () => void blobs.set(id, bytes.slice())),
    get: (id) => on("get", id, () => Option.map(Option.fromNullable(blobs.get(id)), (b) => b.slice())),
    delete: (id) => on("delete", id, () => blobs.delete(id)),
    list: Effect.sync(() => [...blobs.keys()])
  })
}

/** SQLite metadata in `directory` + the counting BlobStore, with the default Hasher and Codec. */
const sqliteAndCounting = (directory: string, calls: Calls) =>
  Layer.mergeAll(
    Hasher.layer,
    Codec.layer(),
    MetadataStore.layerSqlite({ filename: path.join(directory, "cache.db") }),
    Layer.sync(BlobStore.BlobStore, () => countingBlobStore(calls))
  )

const small = { model: "xgboost", scores: [0.5, 0.7] }
const large = incompressible(100_000)

describe("a cache composed from parts", () => {
  it.scoped("memory metadata + file blobs: small values inline, large ones as files", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      // The layer lives as long as the test's scope: the cache stays open for all of it.
      const cache = yield* Layer.build(Cache.layerFromServices().pipe(Layer.provide(memoryAndFiles(directory)))).pipe(
        Effect.map(Context.get(Cache.Cache))
      )
      yield* cache.put({ k: "small" }, small)
      assert.deepStrictEqual(listFiles(directory), [], "a small value writes no blob")
      const key = yield* cache.put({ k: "large" }, large)
      const files = listFiles(directory)
      assert.strictEqual(files.length, 1)
      assert.isTrue(path.basename(files[0]).startsWith(`${key}-`), files[0])
      assert.deepStrictEqual(yield* cache.get({ k: "small" }), Option.some(small))
      assert.deepStrictEqual(yield* cache.get({ k: "large" }), Option.some(large))
      const stats = yield* cache.stats()
      assert.strictEqual(stats.entries, 2)
    }))

  it.scoped("SQLite metadata + a user-written BlobStore: the large value goes through it, the small one does not", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const calls: Calls = { log: [] }
      const cache = yield* Layer.build(
        Cache.layerFromServices().pipe(Layer.provide(sqliteAndCounting(directory, calls)))
      ).pipe(
        Effect.map(Context.get(Cache.Cache))
      )
      yield* cache.put({ k: "small" }, small)
      assert.deepStrictEqual(yield* cache.get({ k: "small" }), Option.some(small))
      assert.deepStrictEqual(calls.log, [], "the small value is inline: no blob call")

      const key = yield* cache.put({ k: "large" }, large)
      assert.deepStrictEqual(yield* cache.get({ k: "large" }), Option.some(large))
      const [put, get, ...rest] = calls.log
      assert.match(put, new RegExp(`^put ${key}-[0-9a-z]+$`))
      assert.strictEqual(get, put.replace(/^put/, "get"), "read back from the same blob")
      assert.deepStrictEqual(rest, [])

      assert.isTrue(yield* cache.has({ k: "large" }))
      assert.strictEqual((yield* cache.stats()).entries, 2)
      // The rows are in the SQLite file given, the small value's bytes inline in its row.
      const db = new Database(path.join(directory, "cache.db"), { readonly: true })
      const rows = db.prepare("SELECT key, blob_id AS blobId FROM cacheness_entries ORDER BY key").all() as Array<
        { key: string; blobId: string | null }
      >
      db.close()
      assert.strictEqual(rows.length, 2)
      assert.deepStrictEqual(rows.filter((r) => r.blobId !== null).map((r) => r.key), [key])
    }))
})

cacheSuite(
  "layerFromServices (memory metadata + file blobs)",
  (options) =>
    Layer.unwrapScoped(
      Effect.map(
        tempDir,
        (directory) => Cache.layerFromServices(options).pipe(Layer.provide(memoryAndFiles(directory)))
      )
    )
)

cacheSuite(
  "layerFromServices (SQLite metadata + a user-written BlobStore)",
  (options) =>
    Layer.unwrapScoped(
      Effect.map(tempDir, (directory) =>
        Cache.layerFromServices(options).pipe(Layer.provide(sqliteAndCounting(directory, { log: [] }))))
    )
)
