// The published suites hold a store nobody here shipped to the same contract as ours: a BlobStore
// written by hand in a few lines, and a MetadataStore wrapping another (as a caching or metrics
// decorator would). Imported the way a third party imports them: the suites from cacheness/testing.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { BlobStore, make as makeBlobStore, StorageError } from "../src/blob/service.js"
import * as Cache from "../src/Cache.js"
import * as CodecDefault from "../src/codec/registry.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import { make as makeMetadataStore } from "../src/metadata/make.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import { MetadataStore } from "../src/metadata/service.js"
import { blobStoreSuite, cacheSuite, metadataStoreSuite } from "../src/testing.js"

/** A third party's BlobStore: a Map, with the id rule every backend enforces; `make` adds the rest. */
const mapBlobStore = (): BlobStore.Service => {
  const blobs = new Map<string, Uint8Array>()
  const checked = <A>(method: string, id: string, f: () => A) =>
    /^[0-9a-f]{16}-[0-9a-z]{1,64}$/.test(id)
      ? Effect.sync(f)
      : Effect.fail(new StorageError({ reason: "InvalidId", method, id, description: "not a blob id" }))
  return makeBlobStore({
    backend: "map",
    // Copies in and out: the store must not keep (or hand out) bytes the caller may reuse.
    put: (id, bytes) => checked("put", id, () => void blobs.set(id, bytes.slice())),
    get: (id) => checked("get", id, () => Option.map(Option.fromNullable(blobs.get(id)), (b) => b.slice())),
    delete: (id) => checked("delete", id, () => blobs.delete(id)),
    // `has` and `clear` come from `make` (through `get`, `list` and `delete`), which the suite checks too.
    list: Effect.sync(() => [...blobs.keys()])
  })
}

const mapBlobStoreLayer = Layer.sync(BlobStore, mapBlobStore)

/** Upserts seen by the wrapping store, so a test can tell the suite went through the wrapper. */
let wrappedUpserts = 0

/**
 * A third party's MetadataStore: the memory store's primitive operations behind a decorator that
 * counts writes, rebuilt with `make`, so its derived members (probe, removeCounted, listEntries,
 * the NotSync fast paths …) are `make`'s defaults held to the contract.
 */
const countingMetadataLayer = Layer.effect(
  MetadataStore,
  Effect.map(MetadataStoreMemory.make(), (inner) => {
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
      ...primitives
    } = inner
    return makeMetadataStore({
      ...primitives,
      backend: "counting",
      upsert: (record, rows) => Effect.tap(inner.upsert(record, rows), () => Effect.sync(() => wrappedUpserts++))
    })
  })
)

blobStoreSuite("third-party map store", mapBlobStoreLayer)
metadataStoreSuite("third-party wrapping store", countingMetadataLayer)
// A plain layer (default policies): the suite runs what needs no options of its own.
cacheSuite(
  "a cache over both third-party stores",
  Cache.layerFromServices().pipe(
    Layer.provide(Layer.mergeAll(HasherXxhash.layer, CodecDefault.layer(), countingMetadataLayer, mapBlobStoreLayer))
  )
)

describe("third-party stores", () => {
  it.effect("the wrapping store is the one the suite exercised", () =>
    Effect.sync(() => {
      // vitest runs a file's tests in order: the suite above has run through the wrapper.
      assert.isTrue(wrappedUpserts > 0)
    }))
})
