// A large array stored as it is (`compression: "none"`) is copied into its stored bytes piece by
// piece as the file-system store writes them (`Encoded.fill`, `BlobStore.putFilling`): each piece
// hashed while it is in cache, written on the threadpool while the next is copied.
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import { BlobStore } from "../src/blob/service.js"
import * as Cache from "../src/Cache.js"
import * as Blocks from "../src/codec/blocks.js"
import * as Compression from "../src/codec/compression.js"
import * as CodecDefault from "../src/codec/registry.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { cacheness } from "../src/promise.js"
import { listFiles, makeTempDir, tempDir } from "./support/tmp.js"

const MiB = 1 << 20
const none = { compression: { byKind: { array: { codec: "none" as const } } }, cleanupOnOpen: false }
const ramp = (n: number) => Float64Array.from({ length: n }, (_, i) => i * 0.5 - 3)
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

/** Every report of a fill, checked to be contiguous from where the bytes were already final. */
const reports = (fill: (onFilled: (start: number, end: number) => void) => void) => {
  const ranges: Array<readonly [number, number]> = []
  fill((start, end) => {
    ranges.push([start, end])
  })
  for (let i = 1; i < ranges.length; i++) assert.strictEqual(ranges[i]![0], ranges[i - 1]![1], `range ${i} follows`)
  return ranges
}

describe("copies made as the blob is written", () => {
  it("writeRawDeferred writes what Blocks.write writes with no codec, its ranges contiguous to the end", () => {
    const policy: Blocks.BlockPolicy = {
      spec: Compression.byName.none,
      level: undefined,
      shuffle: true,
      minSize: 0,
      minSavings: 0.03
    }
    for (const size of [MiB + 24, 16 * MiB, 2 * 16 * MiB + 8 * 3]) {
      const src = bytesOf(ramp(size / 8))
      const written = new Blocks.Writer(new Uint8Array(Blocks.bound(size) + 16), 16)
      Blocks.write(written, src, 8, policy)
      const deferred = new Blocks.Writer(new Uint8Array(Blocks.bound(size) + 16), 16)
      const fill = Blocks.writeRawDeferred(deferred, src)
      assert.strictEqual(deferred.offset, written.offset, `${size}: the stream's end is known before the copy`)
      const ranges = reports(fill)
      assert.strictEqual(ranges[0]![0], 16)
      assert.strictEqual(ranges.at(-1)![1], written.offset)
      assert.isTrue(ranges.every(([s, e]) => e - s <= Blocks.FILL_PIECE + 32), "pieces of FILL_PIECE (and headers)")
      assert.deepStrictEqual(deferred.bytes.subarray(16, deferred.offset), written.bytes.subarray(16, written.offset))
    }
  })

  it.effect("the codec defers the copy only when asked, and the filled bytes are the complete encoding", () =>
    Effect.gen(function*() {
      const codec = CodecDefault.make({ compression: none.compression })
      const value = ramp(10 * MiB / 8)
      const complete = yield* codec.encode(value)
      assert.isUndefined(complete.fill)
      const deferred = yield* codec.encode(value, { deferCopy: true })
      assert.isFunction(deferred.fill)
      assert.strictEqual(deferred.bytes.byteLength, complete.bytes.byteLength)
      reports(deferred.fill!)
      assert.deepStrictEqual(deferred.bytes, complete.bytes)
      assert.deepStrictEqual(Array.from((yield* codec.decode(deferred.bytes)) as Float64Array), Array.from(value))
      // Small arrays, compressed arrays and other values are never deferred.
      assert.isUndefined((yield* codec.encode(ramp(1000), { deferCopy: true })).fill)
      assert.isUndefined((yield* CodecDefault.make().encode(value, { deferCopy: true })).fill)
      assert.isUndefined((yield* codec.encode({ a: value }, { deferCopy: true })).fill)
    }))

  it.scoped("the file-system store writes each range as it is filled; the file is the bytes, no temp file left", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const store = yield* Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))
      assert.isFunction(store.putFilling)
      const source = bytesOf(ramp(9 * MiB / 8))
      const bytes = new Uint8Array(source.byteLength)
      bytes.set(source.subarray(0, 100))
      let calls = 0
      yield* store.putFilling!("0123456789abcdef-1", bytes, (onFilled) => {
        calls++
        for (let at = 100; at < bytes.byteLength; at += 300_000) {
          const end = Math.min(bytes.byteLength, at + 300_000)
          bytes.set(source.subarray(at, end), at)
          onFilled(at, end)
        }
      })
      assert.strictEqual(calls, 1)
      const back = Option.getOrThrow(yield* store.get("0123456789abcdef-1"))
      assert.isTrue(Buffer.from(back).equals(Buffer.from(source)))
      assert.deepStrictEqual(listFiles(directory).filter((f) => f.endsWith(".tmp")), [])
    }))

  it.scoped("a fill that throws is a StorageError: no blob, no temp file", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const store = yield* Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))
      const bytes = new Uint8Array(12 * MiB)
      const error = yield* Effect.flip(store.putFilling!("0123456789abcdef-2", bytes, (onFilled) => {
        onFilled(0, 5 * MiB)
        throw new Error("copy failed")
      }))
      assert.strictEqual(error._tag, "StorageError")
      assert.strictEqual(error.reason, "WriteFailed")
      assert.include(error.message, "copy failed")
      assert.isFalse(yield* store.has("0123456789abcdef-2"))
      assert.deepStrictEqual(listFiles(directory), [])
    }))

  it("a Promise put stores the array as it was when put was called, changed right after", async () => {
    const directory = makeTempDir()
    try {
      const cache = cacheness({ directory, ...none })
      // Opened first: the first call waits for the cache to open, and runs the put after.
      await cache.get({ k: 0 })
      const value = ramp(12 * MiB / 8)
      const original = Float64Array.from(value)
      const pending = cache.put({ k: 1 }, value)
      value.fill(7)
      await pending
      const back = (await cache.get({ k: 1 })) as Float64Array
      assert.isTrue(Buffer.from(bytesOf(back)).equals(Buffer.from(bytesOf(original))))
      // The stored checksum is the bytes' own: a full verification finds nothing wrong.
      const report = await cache.verify()
      assert.strictEqual(report.checked, 1)
      assert.deepStrictEqual(report.checksumMismatches, [])
      await cache.close()
    } finally {
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })

  it("a signed cache stores a large none array as it was when put was called, signed: verify passes, another key misses", async () => {
    const directory = makeTempDir()
    try {
      const key = "a signing key of at least thirty-two bytes"
      const cache = cacheness({ directory, ...none, signing: { key } })
      await cache.get({ k: 0 })
      const value = Int32Array.from({ length: 10 * MiB / 4 }, (_, i) => i * 3)
      const original = Int32Array.from(value)
      const pending = cache.put({ k: 1 }, value)
      value.fill(-1)
      await pending
      const back = (await cache.get({ k: 1 })) as Int32Array
      assert.isTrue(Buffer.from(bytesOf(back)).equals(Buffer.from(bytesOf(original))))
      const [entry] = await cache.list()
      assert.strictEqual(entry!.codec, "none")
      const report = await cache.verify()
      assert.strictEqual(report.checked, 1)
      assert.deepStrictEqual(report.checksumMismatches, [])
      await cache.close()
      // Another key cannot read it: the entry is signed, not only checksummed.
      const other = cacheness({ directory, ...none, signing: { key: "another key, also thirty-two bytes long" } })
      assert.isUndefined(await other.get({ k: 1 }))
      await other.close()
    } finally {
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })

  it.scoped("a large none put goes to putFilling, filled in FILL_PIECE pieces; smaller and compressed ones go to put", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const calls: Array<string> = []
      const blobs = Layer.effect(
        BlobStore,
        Effect.map(BlobStore, (inner) => ({
          ...inner,
          put: (id: string, bytes: Uint8Array) =>
            Effect.zipRight(Effect.sync(() => calls.push(`put ${bytes.byteLength}`)), inner.put(id, bytes)),
          putFilling: (id: string, bytes: Uint8Array, fill: (onFilled: (s: number, e: number) => void) => void) =>
            Effect.zipRight(
              Effect.sync(() => calls.push(`putFilling ${bytes.byteLength}`)),
              inner.putFilling!(id, bytes, (onFilled) => {
                let pieces = 0
                fill((start, end) => {
                  pieces++
                  onFilled(start, end)
                })
                calls.push(`filled in ${pieces} pieces`)
              })
            )
        }))
      ).pipe(Layer.provide(BlobStoreFileSystem.layer({ directory: `${directory}/blobs` })))
      const layer = (compression: object) =>
        Cache.layerFromServices({}).pipe(
          Layer.provide(Layer.mergeAll(
            HasherXxhash.layer,
            CodecDefault.layer({ compression }),
            MetadataStoreSqlite.layer({ filename: `${directory}/meta.sqlite` }),
            blobs
          ))
        )
      const cache = yield* Layer.build(layer(none.compression)).pipe(Effect.map(Context.get(Cache.Cache)))
      const big = ramp(10 * MiB / 8)
      yield* cache.put({ k: "big" }, big)
      yield* cache.put({ k: "small" }, ramp(MiB / 8))
      assert.strictEqual(
        calls[0],
        `putFilling ${(yield* cache.list()).find((e) => e.storedBytes > 9 * MiB)!.storedBytes}`
      )
      assert.strictEqual(calls[1], `filled in ${10 * MiB / Blocks.FILL_PIECE} pieces`)
      assert.match(calls[2]!, /^put \d+$/)
      assert.strictEqual(calls.length, 3)
      const back = Option.getOrThrow(yield* cache.get({ k: "big" })) as Float64Array
      assert.isTrue(Buffer.from(bytesOf(back)).equals(Buffer.from(bytesOf(big))))
      // Compressed: complete bytes through put.
      const lz4 = yield* Layer.build(layer({ codec: "lz4" })).pipe(Effect.map(Context.get(Cache.Cache)))
      yield* lz4.put({ k: "lz4" }, big)
      assert.match(calls[3]!, /^put \d+$/)
    }))

  it.scoped("large none arrays round-trip on every store, with and without putFilling, also replaced and in batches", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const layers: Array<readonly [string, Layer.Layer<Cache.Cache, unknown>]> = [
        ["files", Cache.layer({ directory: path.join(directory, "files"), ...none })],
        ["memory", Cache.layerMemory(none)]
      ]
      for (const [name, layer] of layers) {
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const a = ramp(9 * MiB / 8)
          const b = Int32Array.from({ length: 20 * MiB / 4 }, (_, i) => i ^ 0x55)
          yield* cache.put({ k: "a" }, a)
          yield* cache.put({ k: "a" }, b)
          yield* cache.putMany([[{ k: "b" }, a], [{ k: "c" }, b]])
          for (const [k, expected] of [["a", b], ["b", a], ["c", b]] as const) {
            const back = Option.getOrThrow(yield* cache.get({ k }))
            assert.isTrue(
              Buffer.from(bytesOf(back as ArrayBufferView)).equals(Buffer.from(bytesOf(expected))),
              `${name} ${k}`
            )
          }
          assert.deepStrictEqual((yield* cache.list()).map((e) => e.codec), ["none", "none", "none"], name)
        }).pipe(Effect.provide(layer))
      }
    }))
})
