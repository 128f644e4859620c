/**
 * `BlobStore` in a `Map`: for tests and `Cache.layerMemory`. Bytes are copied on `put` and on `get`,
 * so neither the writer nor a reader can change what is stored by mutating their array.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { validateId } from "./blobId.js"
import { BlobStore, make as makeBlobStore } from "./service.js"

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (): BlobStore.Service => {
  const blobs = new Map<string, Uint8Array>()
  return makeBlobStore({
    backend: "memory",
    put: (id, bytes) =>
      Effect.flatMap(validateId(id, "BlobStore.put"), () =>
        Effect.sync(() => {
          // A copy: `Buffer#slice` would be a view, and the caller may reuse its buffer (large puts do).
          blobs.set(id, new Uint8Array(bytes))
        })),
    get: (id) =>
      Effect.flatMap(validateId(id, "BlobStore.get"), () =>
        Effect.sync(() => {
          const bytes = blobs.get(id)
          return bytes === undefined ? Option.none() : Option.some(new Uint8Array(bytes))
        })),
    delete: (id) => Effect.flatMap(validateId(id, "BlobStore.delete"), () => Effect.sync(() => blobs.delete(id))),
    has: (id) => Effect.flatMap(validateId(id, "BlobStore.has"), () => Effect.sync(() => blobs.has(id))),
    list: Effect.sync(() => Array.from(blobs.keys())),
    clear: Effect.sync(() => {
      const count = blobs.size
      blobs.clear()
      return count
    })
  })
}

/**
 * A fresh, empty memory store per build of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<BlobStore> = Layer.sync(BlobStore, make)
