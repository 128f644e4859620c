// A large blob's plain checksum is computed while the store writes it (`writeBlob`), piece by
// piece with a turn of the event loop between pieces, instead of in one piece before the write
// starts; the row is written after both, with the checksum of the bytes written.
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import { BlobStore } from "../src/blob/service.js"
import * as CodecDefault from "../src/codec/registry.js"
import { StorageError } from "../src/errors.js"
import { Cache } from "../src/index.js"
import { Hasher } from "../src/key/service.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { tempDir } from "./support/tmp.js"

const MiB = 1 << 20

/** The store and the hasher, each telling `events` when a blob write starts and ends and when a piece is hashed. */
const recorded = (directory: string, events: Array<string>, failPut: { on: boolean }) => {
  const blobs = Layer.effect(
    BlobStore,
    Effect.map(BlobStore, (inner) => ({
      ...inner,
      put: (id: string, bytes: Uint8Array) =>
        failPut.on
          ? Effect.fail(
            new StorageError({ reason: "WriteFailed", method: "BlobStore.put", id, description: "disk on fire" })
          )
          : Effect.sync(() => events.push(`write ${bytes.byteLength}`)).pipe(
            Effect.zipRight(inner.put(id, bytes)),
            Effect.ensuring(Effect.sync(() => events.push("written")))
          )
    }))
  ).pipe(Layer.provide(BlobStoreFileSystem.layer({ directory: `${directory}/blobs` })))
  const hasher = Layer.effect(
    Hasher,
    Effect.map(Hasher, (inner) => ({
      ...inner,
      hashStream: () => {
        const stream = inner.hashStream!()
        return {
          update: (piece: Uint8Array) => {
            events.push(`hash ${piece.byteLength}`)
            stream.update(piece)
          },
          digest: stream.digest
        }
      }
    }))
  ).pipe(Layer.provide(HasherXxhash.layer))
  return Cache.layerFromServices({}).pipe(
    Layer.provide(Layer.mergeAll(
      hasher,
      CodecDefault.layer(),
      MetadataStoreSqlite.layer({ filename: `${directory}/meta.sqlite` }),
      blobs
    ))
  )
}

describe("a large put hashes its blob while the store writes it", () => {
  it.scoped("pieces are hashed between the write's start and end; the get verifies the checksum", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const events: Array<string> = []
      const cache = yield* Layer.build(recorded(directory, events, { on: false })).pipe(
        Effect.map(Context.get(Cache.Cache))
      )
      const value = new Float64Array(crypto.randomBytes(24 * MiB).buffer)
      yield* cache.put({ big: 1 }, value)
      const start = events.findIndex((e) => e.startsWith("write "))
      const end = events.indexOf("written")
      assert.isAtLeast(start, 0)
      const during = events.slice(start + 1, end).filter((e) => e.startsWith("hash "))
      assert.isAtLeast(during.length, 2, `hashed while writing: ${events.join(", ")}`)
      const hashed = events.filter((e) => e.startsWith("hash ")).reduce((n, e) => n + Number(e.slice(5)), 0)
      assert.strictEqual(hashed, Number(events[start]!.slice(6)), "every byte written was hashed once")
      // verifyIntegrity (the default) compares the row's checksum with the bytes read back.
      const back = Option.getOrThrow(yield* cache.get({ big: 1 })) as Float64Array
      assert.isTrue(Buffer.from(back.buffer).equals(Buffer.from(value.buffer)))
    }))

  it.scoped("a small blob is hashed before its write, in one piece", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const events: Array<string> = []
      const cache = yield* Layer.build(recorded(directory, events, { on: false })).pipe(
        Effect.map(Context.get(Cache.Cache))
      )
      const value = new Float64Array(crypto.randomBytes(2 * MiB).buffer)
      yield* cache.put({ small: 1 }, value)
      assert.isFalse(events.some((e) => e.startsWith("hash ")), events.join(", "))
      assert.isTrue(Option.isSome(yield* cache.get({ small: 1 })))
    }))

  it.scoped("a failed write stores no row and leaves the old value", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const events: Array<string> = []
      const fail = { on: false }
      const cache = yield* Layer.build(recorded(directory, events, fail)).pipe(Effect.map(Context.get(Cache.Cache)))
      const old = new Float64Array(crypto.randomBytes(16 * MiB).buffer)
      yield* cache.put({ big: 2 }, old)
      fail.on = true
      const error = yield* Effect.flip(cache.put({ big: 2 }, new Float64Array(crypto.randomBytes(16 * MiB).buffer)))
      assert.strictEqual(error._tag, "StorageError")
      fail.on = false
      const back = Option.getOrThrow(yield* cache.get({ big: 2 })) as Float64Array
      assert.isTrue(Buffer.from(back.buffer).equals(Buffer.from(old.buffer)))
    }))
})
