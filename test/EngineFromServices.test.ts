import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Cache } from "../src/index.js"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import * as BlobStoreMemory from "../src/blob/memory.js"
import * as CodecDefault from "../src/codec/registry.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"

const services = (blobs: Layer.Layer<any, any>) =>
  Layer.mergeAll(HasherXxhash.layer, CodecDefault.layer(), MetadataStoreMemory.layer, blobs)

describe("Cache.layerFromServices", () => {
  it.scoped("stores small and large values through the stores in context", () =>
    Effect.gen(function*() {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-engine-"))
      const layer = Cache.layerFromServices({ defaultTtl: "1 hour" }).pipe(
        Layer.provide(services(BlobStoreFileSystem.layer({ directory })))
      )
      const cache = yield* Effect.provide(Cache.Cache, layer)
      yield* cache.put({ n: 1 }, "small")
      const large = new Uint8Array(crypto.randomBytes(100_000))
      yield* cache.put({ n: 2 }, large)
      assert.deepStrictEqual(yield* cache.get({ n: 1 }), Option.some("small"))
      assert.deepStrictEqual(yield* cache.get({ n: 2 }), Option.some(large))
      assert.isTrue(fs.readdirSync(directory, { recursive: true }).length > 0)
    }))

  for (const field of ["directory", "metadataBackend", "blobs", "compression", "bogus"]) {
    it.effect(`rejects ${field}`, () =>
      Effect.gen(function*() {
        const layer = Cache.layerFromServices({ [field]: "x" } as any).pipe(Layer.provide(services(BlobStoreMemory.layer)))
        const error = yield* Effect.flip(Effect.provide(Cache.Cache, layer))
        assert.strictEqual(error._tag, "ConfigError")
        assert.include(error.message, field)
        if (field === "directory" || field === "metadataBackend") assert.include(error.message, "Cache.layer")
      }))
  }
})
