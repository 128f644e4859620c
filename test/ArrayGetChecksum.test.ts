// A large blob's checksum is computed on the pieces the file-system store hands over while it
// reads the rest (`BlobStore.get`'s `onPiece`), and still decides the read before anything is
// decoded: damage in any piece is a miss and the entry is removed; a hasher without `hashStream`,
// or a store that gives no pieces, hashes the whole blob as before.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import * as BlobStoreMemory from "../src/blob/memory.js"
import { BlobStore } from "../src/blob/service.js"
import { HASH_WHILE_READING, pieceHash } from "../src/cache/integrity.js"
import * as CodecDefault from "../src/codec/registry.js"
import { Cache } from "../src/index.js"
import { Hasher, make as makeHasher } from "../src/key/service.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"

const MiB = 1 << 20

/** The real hasher, counting what it hashes whole and in pieces; `streams: false` drops `hashStream`. */
const countingHasher = (streams: boolean) => {
  const seen = { wholeLarge: 0, streams: 0, pieces: 0 }
  const layer = Layer.effect(
    Hasher,
    Effect.map(HasherXxhash.make(), (real) =>
      makeHasher({
        key: real.key,
        unsafeKey: real.unsafeKey,
        describe: real.describe,
        unsafeDescribe: real.unsafeDescribe,
        hashPath: real.hashPath,
        hashBytes: (bytes) => {
          if (bytes.byteLength >= HASH_WHILE_READING) seen.wholeLarge++
          return real.hashBytes(bytes)
        },
        hashStream: streams
          ? () => {
            seen.streams++
            const stream = real.hashStream!()
            return {
              update: (piece) => {
                seen.pieces++
                stream.update(piece)
              },
              digest: stream.digest
            }
          }
          : undefined
      }))
  )
  return { seen, layer }
}

const cacheWith = (hasher: Layer.Layer<Hasher>, blobs: Layer.Layer<BlobStore, any>) =>
  Effect.provide(
    Cache.Cache,
    Cache.layerFromServices({ defaultTtl: "1 hour" }).pipe(
      Layer.provide(Layer.mergeAll(hasher, CodecDefault.layer(), MetadataStoreMemory.layer, blobs))
    )
  )

/** Random bytes: stored raw (nothing to compress), so the blob is as large as the value. */
const largeValue = () => new Uint8Array(crypto.randomBytes(10 * MiB + 12_345))

const blobFile = (directory: string) => {
  const files = (fs.readdirSync(directory, { recursive: true }) as Array<string>)
    .map((name) => path.join(directory, name))
    .filter((file) => fs.statSync(file).isFile())
  assert.strictEqual(files.length, 1)
  return files[0]!
}

describe("array gets: the checksum of a large blob, hashed while it is read", () => {
  it.scoped("hashes the pieces as they land, not the whole blob after", () =>
    Effect.gen(function*() {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-piece-hash-"))
      const { layer, seen } = countingHasher(true)
      const cache = yield* cacheWith(layer, BlobStoreFileSystem.layer({ directory }))
      const value = largeValue()
      yield* cache.put({ k: 1 }, value)
      // The put hashed its blob in pieces too, while writing it (PutHashWhileWriting.test.ts).
      const { pieces: piecesAfterPut, streams: streamsAfterPut, wholeLarge: wholeAfterPut } = seen
      assert.deepStrictEqual(yield* cache.get({ k: 1 }), Option.some(value))
      assert.strictEqual(seen.wholeLarge, wholeAfterPut, "the read hashed no large blob whole")
      assert.strictEqual(seen.streams - streamsAfterPut, 1)
      assert.isAbove(seen.pieces - piecesAfterPut, 2)
    }))

  it.scoped("damage in the last piece: a miss, the entry and its blob removed", () =>
    Effect.gen(function*() {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-piece-hash-"))
      const { layer, seen } = countingHasher(true)
      const cache = yield* cacheWith(layer, BlobStoreFileSystem.layer({ directory }))
      yield* cache.put({ k: 1 }, largeValue())
      const piecesAfterPut = seen.pieces
      const file = blobFile(directory)
      const bytes = fs.readFileSync(file)
      bytes[bytes.length - 10] ^= 0x40
      fs.writeFileSync(file, bytes)
      assert.isTrue(Option.isNone(yield* cache.get({ k: 1 })))
      assert.isAbove(seen.pieces - piecesAfterPut, 2, "the damaged blob went through the pieces")
      assert.isFalse(fs.existsSync(file), "its blob removed")
      assert.isFalse(yield* cache.has({ k: 1 }))
    }))

  it.scoped("a hasher without hashStream hashes the whole blob, and still finds damage", () =>
    Effect.gen(function*() {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-piece-hash-"))
      const { layer, seen } = countingHasher(false)
      const cache = yield* cacheWith(layer, BlobStoreFileSystem.layer({ directory }))
      const value = largeValue()
      yield* cache.put({ k: 1 }, value)
      const before = seen.wholeLarge
      assert.deepStrictEqual(yield* cache.get({ k: 1 }), Option.some(value))
      assert.strictEqual(seen.wholeLarge, before + 1)
      const file = blobFile(directory)
      const bytes = fs.readFileSync(file)
      bytes[5 * MiB] ^= 1
      fs.writeFileSync(file, bytes)
      assert.isTrue(Option.isNone(yield* cache.get({ k: 1 })))
      assert.isFalse(fs.existsSync(file))
    }))

  it.scoped("a store that gives no pieces: the whole blob is hashed", () =>
    Effect.gen(function*() {
      const { layer, seen } = countingHasher(true)
      const cache = yield* cacheWith(layer, BlobStoreMemory.layer)
      const value = largeValue()
      yield* cache.put({ k: 1 }, value)
      const { pieces: piecesAfterPut, wholeLarge: before } = seen
      assert.deepStrictEqual(yield* cache.get({ k: 1 }), Option.some(value))
      assert.strictEqual(seen.wholeLarge, before + 1)
      assert.strictEqual(seen.pieces, piecesAfterPut, "the read was not hashed in pieces")
    }))

  it.scoped("the file-system store's pieces are consecutive views of the bytes it returns", () =>
    Effect.gen(function*() {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-piece-hash-"))
      const store = yield* Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))
      const value = largeValue()
      const id = `${"ab".repeat(8)}-v1`
      yield* store.put(id, value)
      const pieces: Array<Uint8Array> = []
      const back = Option.getOrThrow(yield* store.get(id, (piece) => pieces.push(piece)))
      assert.isAbove(pieces.length, 2)
      let at = 0
      for (const piece of pieces) {
        assert.strictEqual(piece.buffer, back.buffer)
        assert.strictEqual(piece.byteOffset, back.byteOffset + at)
        at += piece.byteLength
      }
      assert.strictEqual(at, back.byteLength)
      assert.deepStrictEqual(new Uint8Array(back), value)
    }))
})

describe("pieceHash", () => {
  const settings = (hashBytes: (b: Uint8Array) => string, hashStream: any) => ({
    signer: null,
    verifyIntegrity: true,
    hashBytes,
    hashStream
  })
  const record = { storedBytes: HASH_WHILE_READING } as any

  it.effect("gives the digest only for pieces that are exactly the bytes", () =>
    Effect.gen(function*() {
      const real = yield* HasherXxhash.make()
      const s = settings(real.hashBytes, real.hashStream)
      const bytes = new Uint8Array(crypto.randomBytes(HASH_WHILE_READING))
      const whole = pieceHash(s, record)!
      for (let at = 0; at < bytes.byteLength; at += 3 * MiB) whole.onPiece(bytes.subarray(at, at + 3 * MiB))
      assert.strictEqual(whole.digestOf(bytes), real.hashBytes(bytes))

      const short = pieceHash(s, record)!
      short.onPiece(bytes.subarray(0, MiB))
      assert.isUndefined(short.digestOf(bytes), "pieces that cover part of the bytes")

      const gap = pieceHash(s, record)!
      gap.onPiece(bytes.subarray(0, MiB))
      gap.onPiece(bytes.subarray(2 * MiB))
      gap.onPiece(bytes.subarray(MiB, 2 * MiB))
      assert.isUndefined(gap.digestOf(bytes), "pieces out of order")

      const copy = pieceHash(s, record)!
      copy.onPiece(new Uint8Array(bytes))
      assert.isUndefined(copy.digestOf(bytes), "other memory than the bytes returned")
    }))

  it("is off for signed caches, unchecked reads, small blobs and hashers without hashStream", () => {
    const stream = () => ({ update: () => {}, digest: () => "" })
    assert.isUndefined(pieceHash({ ...settings(() => "", stream), signer: {} as any }, record))
    assert.isUndefined(pieceHash({ ...settings(() => "", stream), verifyIntegrity: false }, record))
    assert.isUndefined(pieceHash(settings(() => "", stream), { storedBytes: HASH_WHILE_READING - 1 } as any))
    assert.isUndefined(pieceHash(settings(() => "", undefined), record))
    assert.isDefined(pieceHash(settings(() => "", stream), record))
  })
})
