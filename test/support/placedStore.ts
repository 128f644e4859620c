// The file-system blob store, telling `calls` what each read asked for: "get" (read whole), or what
// `place` answered ("declined", or "placed N" for N views). Shared by the placed-read tests.
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../../src/blob/fileSystem.js"
import { BlobStore } from "../../src/blob/service.js"

export const watchedStore = (directory: string, calls: Array<string>) =>
  Layer.effect(
    BlobStore,
    Effect.map(BlobStore, (inner): BlobStore.Service => ({
      ...inner,
      get: (id, onPiece) => Effect.zipRight(Effect.sync(() => calls.push("get")), inner.get(id, onPiece)),
      getPlaced: (id, place, onPiece) =>
        inner.getPlaced!(id, (head, size) => {
          const places = place(head, size)
          calls.push(places === undefined ? "declined" : `placed ${places.views.length}`)
          return places
        }, onPiece)
    }))
  ).pipe(Layer.provide(BlobStoreFileSystem.layer({ directory: path.join(directory, "blobs") })))
