// The published suites hold a store nobody here shipped to the same contract as ours: a BlobStore
// written by hand in a few lines, and a MetadataStore wrapping another (as a caching or metrics
// decorator would). Written against the public modules only, the way a third party writes them.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { BlobStore, Cache, Codec, Hasher, MetadataStore } from "../src/index.js"
import { blobStoreSuite, cacheSuite, metadataStoreSuite } from "../src/testing.js"

/** A third party's BlobStore: a Map, with the id rule every backend enforces; `make` adds the rest. */
const MapBlobStore = Layer.sync(BlobStore.BlobStore, () => {
  const blobs = new Map<string, Uint8Array>()
  const checked = <A>(method: string, id: string, f: () => A) =>
    /^[0-9a-f]{16}-[0-9a-z]{1,64}$/.test(id)
      ? Effect.sync(f)
      : Effect.fail(new BlobStore.StorageError({ reason: "InvalidId", method, id, description: "not a blob id" }))
  return BlobStore.make({
    backend: "map",
    // Copies in and out: the store must not keep (or hand out) bytes the caller may reuse.
    put: (id, bytes) => checked("put", id, () => void blobs.set(id, bytes.slice())),
    get: (id) => checked("get", id, () => Option.map(Option.fromNullable(blobs.get(id)), (b) => b.slice())),
    delete: (id) => checked("delete", id, () => blobs.delete(id)),
    // `has` and `clear` come from `make` (through `get`, `list` and `delete`): the suite checks them too.
    list: Effect.sync(() => [...blobs.keys()])
  })
})

/** Upserts seen by the wrapping store, so a test can tell the suite went through the wrapper. */
let wrappedUpserts = 0

/**
 * A third party's MetadataStore: the memory store's primitive operations behind a decorator that
 * counts writes, rebuilt with `make`, so its derived members (probe, removeCounted, listEntries,
 * the NotSync fast paths …) are `make`'s defaults held to the contract.
 */
const CountingMetadataStore = Layer.effect(
  MetadataStore.MetadataStore,
  Effect.map(MetadataStore.MetadataStore, (inner) => {
    const {
      changeCount: _changeCount,
      listEntries: _listEntries,
      probe: _probe,
      recount: _recount,
      removeCounted: _removeCounted,
      repairSize: _repairSize,
      sql: _sql,
      unsafeProbe: _unsafeProbe,
      unsafeRecordAccess: _unsafeRecordAccess,
      unsafeUpsert: _unsafeUpsert,
      ...primitives
    } = inner
    return MetadataStore.make({
      ...primitives,
      backend: "counting",
      upsert: (record, rows) => Effect.tap(inner.upsert(record, rows), () => Effect.sync(() => wrappedUpserts++))
    })
  })
).pipe(Layer.provide(MetadataStore.layerMemory()))

blobStoreSuite("third-party map store", MapBlobStore)
metadataStoreSuite("third-party wrapping store", CountingMetadataStore)
// A plain layer (default policies): the suite runs what needs no options of its own.
cacheSuite(
  "a cache over both third-party stores",
  Cache.layerFromServices().pipe(
    Layer.provide(Layer.mergeAll(Hasher.layer, Codec.layer(), CountingMetadataStore, MapBlobStore))
  )
)

describe("third-party stores", () => {
  it.effect("the wrapping store is the one the suites exercised", () =>
    Effect.sync(() => {
      // vitest runs a file's tests in order: the suites above have run through the wrapper.
      assert.isTrue(wrappedUpserts > 0)
    }))
})
