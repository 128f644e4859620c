// A large array stored raw (`compression: "none"`, or nothing shrank) is read straight into the
// array a get returns (`BlobStore.getPlaced`, `Codec.place`): the checksum is still computed over
// the blob's bytes in order and decides the read before the value is made; damage to a block's
// header, a short file, or a layout the codec did not plan for is a miss or a whole read, never
// a wrong value.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import { BlobStore, HEAD_BYTES } from "../src/blob/service.js"
import * as CodecDefault from "../src/codec/registry.js"
import * as Simd from "../src/codec/simd.js"
import { Cache } from "../src/index.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import * as BufferPool from "../src/shared/bufferPool.js"
import { watchedStore } from "./support/placedStore.js"

const MiB = 1 << 20

const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-placed-"))),
  (directory) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
)

const cacheAt = (
  directory: string,
  calls: Array<string>,
  options: { readonly codec?: "none" | "lz4"; readonly verifyIntegrity?: boolean } = {}
) =>
  Effect.provide(
    Cache.Cache,
    Cache.layerFromServices({ verifyIntegrity: options.verifyIntegrity ?? true }).pipe(
      Layer.provide(
        Layer.mergeAll(
          HasherXxhash.layer,
          CodecDefault.layer({ compression: { byKind: { array: { codec: options.codec ?? "none" } } } }),
          MetadataStoreMemory.layer,
          watchedStore(directory, calls)
        )
      )
    )
  )

/** A smooth signal: several 16 MiB blocks and a short last one. */
const signal = (bytes: number) =>
  Float64Array.from({ length: bytes / 8 }, (_, i) => Math.sin(i / 1000) * 100 + i * 1e-6)

const blobFile = (directory: string) => {
  const files = (fs.readdirSync(path.join(directory, "blobs"), { recursive: true }) as Array<string>)
    .map((name) => path.join(directory, "blobs", name))
    .filter((file) => fs.statSync(file).isFile())
  assert.strictEqual(files.length, 1)
  return files[0]!
}

/** Where the raw blocks of a blob of one array start: each block header is 5 bytes before its bytes. */
const blockHeaders = (file: string, rawLength: number) => {
  const size = fs.statSync(file).size
  const blocks = Math.ceil(rawLength / (16 * MiB))
  const firstData = size - rawLength - 5 * (blocks - 1)
  return Array.from({ length: blocks }, (_, k) => firstData - 5 + k * (16 * MiB + 5))
}

/** The same type and bytes (chai's deep equality walks a 9 MiB BigInt64Array for seconds). */
const assertSame = (actual: unknown, expected: ArrayBufferView) => {
  assert.strictEqual(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected))
  const a = actual as ArrayBufferView
  assert.isTrue(
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
      Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)
    ),
    "bytes differ"
  )
}

const patch = (file: string, at: number, bytes: ArrayLike<number>) => {
  const fd = fs.openSync(file, "r+")
  fs.writeSync(fd, Buffer.from(bytes as Array<number>), 0, bytes.length, at)
  fs.closeSync(fd)
}

/** One bit of the byte at `at` turned over. */
const flip = (file: string, at: number) => {
  const fd = fs.openSync(file, "r+")
  const byte = Buffer.alloc(1)
  fs.readSync(fd, byte, 0, 1, at)
  byte[0] = byte[0]! ^ 0x10
  fs.writeSync(fd, byte, 0, 1, at)
  fs.closeSync(fd)
}

describe("array gets read straight into their result", () => {
  it.scoped("a large none array: read into its own memory, the pieces hashed in order, every byte its own", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls)
      const value = signal(40 * MiB + 8 * 1234)
      yield* cache.put({ k: "signal" }, value)
      const first = (yield* cache.get({ k: "signal" })).pipe(Option.getOrThrow) as Float64Array
      const second = (yield* cache.get({ k: "signal" })).pipe(Option.getOrThrow) as Float64Array
      // The header; the array header; the stream header with the first block's; three blocks with two headers between.
      assert.deepStrictEqual(calls, ["placed 8", "placed 8"])
      assert.instanceOf(first, Float64Array)
      assertSame(first, value)
      assertSame(second, value)
      assert.notStrictEqual(first.buffer, second.buffer)
      assert.strictEqual(first.byteOffset, 0)
      assert.strictEqual(first.buffer.byteLength, value.byteLength)
      first[0] = -1
      assert.strictEqual(second[0], value[0])
      const third = (yield* cache.get({ k: "signal" })).pipe(Option.getOrThrow) as Float64Array
      assert.strictEqual(third[0], value[0])
    }))

  it.scoped("nd-arrays, BigInt64Array and a schema take the same way", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls)
      const data = BigInt64Array.from({ length: (9 * MiB) / 8 }, (_, i) => BigInt(i) * -3n)
      yield* cache.put({ k: "nd" }, { data, shape: [data.length / 8, 8], dtype: "int64" })
      const back = (yield* cache.get({ k: "nd" })).pipe(Option.getOrThrow) as {
        data: BigInt64Array
        shape: Array<number>
      }
      assert.deepStrictEqual(back.shape, [data.length / 8, 8])
      assertSame(back.data, data)
      yield* cache.put({ k: "typed" }, data)
      const typed = yield* cache.get({ k: "typed" }, { schema: Schema.instanceOf(BigInt64Array) })
      assertSame(Option.getOrThrow(typed), data)
      // Stored data the schema does not match is a miss, as on every other read.
      assert.isTrue(Option.isNone(yield* cache.get({ k: "typed" }, { schema: Schema.instanceOf(Float64Array) })))
      assert.deepStrictEqual(calls, ["placed 4", "placed 4", "placed 4"])
    }))

  it.scoped("columns, unshuffled streams and small arrays are read whole, as before", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const none = yield* cacheAt(directory, calls)
      const columns = { a: signal(6 * MiB), b: Int32Array.from({ length: (4 * MiB) / 4 }, (_, i) => i) }
      yield* none.put({ k: "columns" }, columns)
      assert.deepStrictEqual((yield* none.get({ k: "columns" })).pipe(Option.getOrThrow), columns)
      const small = signal(2 * MiB)
      yield* none.put({ k: "small" }, small)
      assertSame((yield* none.get({ k: "small" })).pipe(Option.getOrThrow), small)
      // One-byte elements are not shuffled: their LZ4 blocks decode straight into the target.
      const lz4 = yield* cacheAt(path.join(directory, "lz4"), calls, { codec: "lz4" })
      const random = crypto.randomBytes(12 * MiB)
      const bytes = Int8Array.from({ length: 12 * MiB }, (_, i) => (i & 1) === 0 ? 0 : random[i]! & 0x7f)
      yield* lz4.put({ k: "int8" }, bytes)
      assertSame((yield* lz4.get({ k: "int8" })).pipe(Option.getOrThrow), bytes)
      // Blobs under HASH_WHILE_READING never ask: the small one's get is a plain `get`.
      assert.deepStrictEqual(calls, ["declined", "get", "declined"])
    }))

  it.scoped("a compressed array: read into the tail of its result and decoded in place, SIMD on and off", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls, { codec: "lz4" })
      const value = signal(40 * MiB + 8 * 99)
      yield* cache.put({ k: "lz4" }, value)
      const stored = (yield* cache.list())[0]!
      assert.isBelow(stored.storedBytes, value.byteLength)
      assert.strictEqual(stored.codec, "lz4")
      for (const simd of [true, false]) {
        Simd.enable(simd && Simd.available)
        try {
          const back = (yield* cache.get({ k: "lz4" })).pipe(Option.getOrThrow) as Float64Array
          assertSame(back, value)
          assert.strictEqual(back.buffer.byteLength, value.byteLength)
        } finally {
          Simd.enable(Simd.available)
        }
      }
      assert.deepStrictEqual(calls, ["placed 2", "placed 2"])
    }))

  it.scoped("a compressed array whose last block did not shrink is copied out and decoded as before", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls, { codec: "lz4" })
      // 32 MiB of zeros, then 12 MiB of noise: the last block is stored raw, 5 bytes longer than its
      // output, so block 1's output would overrun block 2's header in place.
      const value = new Float64Array((44 * MiB) / 8)
      const noise = crypto.randomBytes(12 * MiB)
      new Uint8Array(value.buffer, 32 * MiB).set(noise)
      yield* cache.put({ k: "tail" }, value)
      assert.strictEqual((yield* cache.list())[0]!.codec, "lz4")
      const back = (yield* cache.get({ k: "tail" })).pipe(Option.getOrThrow)
      assertSame(back, value)
      assert.deepStrictEqual(calls, ["placed 2"])
      // Decoded in place, the same stream with its noise first.
      const first = new Float64Array((44 * MiB) / 8)
      new Uint8Array(first.buffer).set(noise)
      yield* cache.put({ k: "head" }, first)
      assertSame((yield* cache.get({ k: "head" })).pipe(Option.getOrThrow), first)
    }))

  it.scoped("damage anywhere is a miss and the entry goes: a data byte, a block header, a short file", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls)
      const value = signal(40 * MiB)
      const damage = [
        (file: string) => flip(file, fs.statSync(file).size - 7 * MiB),
        (file: string) => patch(file, blockHeaders(file, value.byteLength)[1]!, [1]),
        (file: string) => fs.truncateSync(file, fs.statSync(file).size - 100)
      ]
      for (const [n, harm] of damage.entries()) {
        yield* cache.put({ k: n }, value)
        harm(blobFile(directory))
        assert.isTrue(Option.isNone(yield* cache.get({ k: n })), `damage ${n}`)
        assert.isFalse(yield* cache.has({ k: n }))
        assert.deepStrictEqual((yield* cache.list()).length, 0)
      }
    }))

  it.scoped("without checksums, a block header that is not as planned is a miss, never a wrong value", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls, { verifyIntegrity: false })
      const value = signal(40 * MiB)
      for (const [n, bytes] of [[1], [0, 0, 0, 0, 1]].entries()) {
        yield* cache.put({ k: n }, value)
        const file = blobFile(directory)
        patch(file, blockHeaders(file, value.byteLength)[2]!, bytes)
        assert.isTrue(Option.isNone(yield* cache.get({ k: n })), `header ${n}`)
        assert.deepStrictEqual((yield* cache.list()).length, 0)
      }
      yield* cache.put({ k: "intact" }, value)
      assertSame((yield* cache.get({ k: "intact" })).pipe(Option.getOrThrow), value)
    }))

  it.scoped("a get that comes while its spare is still being faulted in waits for it, and gets its own bytes", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const cache = yield* cacheAt(directory, [])
      const value = signal(32 * MiB)
      yield* cache.put({ k: "spare" }, value)
      yield* cache.get({ k: "spare" })
      // The next spare starts in the event loop's next turn; the get below takes it half filled.
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      const filling = BufferPool.sparesFilling().includes(value.byteLength)
      const back = (yield* cache.get({ k: "spare" })).pipe(Option.getOrThrow) as Float64Array
      assertSame(back, value)
      if (!filling) console.log("the spare was already faulted in: only the result was checked")
    }))
})

describe("a placed read whose pieces cannot be trusted", () => {
  it.scoped("a store that hands no pieces: the views are put together and hashed whole, damage still a miss", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const silent = Layer.effect(
        BlobStore,
        Effect.map(BlobStore, (inner): BlobStore.Service => ({
          ...inner,
          getPlaced: (id, place) => inner.getPlaced!(id, place)
        }))
      ).pipe(Layer.provide(BlobStoreFileSystem.layer({ directory: path.join(directory, "blobs") })))
      const cache = yield* Effect.provide(
        Cache.Cache,
        Cache.layerFromServices({}).pipe(
          Layer.provide(
            Layer.mergeAll(
              HasherXxhash.layer,
              CodecDefault.layer({ compression: { byKind: { array: { codec: "none" } } } }),
              MetadataStoreMemory.layer,
              silent
            )
          )
        )
      )
      const value = signal(24 * MiB)
      yield* cache.put({ k: "silent" }, value)
      assertSame((yield* cache.get({ k: "silent" })).pipe(Option.getOrThrow), value)
      flip(blobFile(directory), 20 * MiB)
      assert.isTrue(Option.isNone(yield* cache.get({ k: "silent" })))
      assert.deepStrictEqual((yield* cache.list()).length, 0)
    }))
})

describe("BlobStoreFileSystem.getPlaced", () => {
  const id = "abcdef0123456789-1"
  const store = (directory: string) => Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))

  it.scoped("asks once with the head and the size, fills the views in order, hands pieces that tile them", () =>
    Effect.gen(function*() {
      const blobs = yield* store(yield* tempDirectory)
      const bytes = new Uint8Array(13 * MiB + 77).map((_, i) => (i * 31) & 0xff)
      yield* blobs.put(id, bytes)
      const asked: Array<[number, number]> = []
      const views = [new Uint8Array(10), new Uint8Array(6 * MiB), new Uint8Array(5), new Uint8Array(7 * MiB + 62)]
      const pieces: Array<Uint8Array> = []
      const got = yield* blobs.getPlaced!(id, (head, size) => {
        asked.push([head.byteLength, size])
        assert.deepStrictEqual([...head.subarray(0, 40)], [...bytes.subarray(0, 40)])
        return { views }
      }, (piece) => pieces.push(piece))
      assert.deepStrictEqual(asked, [[HEAD_BYTES, bytes.byteLength]])
      const filled = Option.getOrThrow(got)
      assert.strictEqual(filled.length, 4)
      filled.forEach((view, k) => assert.strictEqual(view, views[k]))
      const joined = Buffer.concat(filled)
      assert.isTrue(joined.equals(bytes))
      assert.isTrue(Buffer.concat(pieces).equals(bytes))
      let k = 0
      let within = 0
      for (const piece of pieces) {
        while (within === views[k]!.byteLength) [k, within] = [k + 1, 0]
        assert.strictEqual(piece.buffer, views[k]!.buffer)
        assert.strictEqual(piece.byteOffset, views[k]!.byteOffset + within)
        within += piece.byteLength
      }
    }))

  it.scoped("declined, the answer is one view of the whole blob; missing, None; a short file, its bytes so far", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const blobs = yield* store(directory)
      const bytes = new Uint8Array(9 * MiB).map((_, i) => i & 0xff)
      yield* blobs.put(id, bytes)
      const pieces: Array<Uint8Array> = []
      const whole = Option.getOrThrow(yield* blobs.getPlaced!(id, () => undefined, (piece) => pieces.push(piece)))
      assert.strictEqual(whole.length, 1)
      assert.isTrue(Buffer.from(whole[0]!).equals(bytes))
      assert.isTrue(Buffer.concat(pieces).equals(bytes))
      assert.isTrue(Option.isNone(yield* blobs.getPlaced!("abcdef0123456789-2", () => undefined)))
      const tiny = new Uint8Array(100).fill(9)
      yield* blobs.put("abcdef0123456789-3", tiny)
      const small = yield* blobs.getPlaced!("abcdef0123456789-3", (head, size) => {
        assert.strictEqual(head.byteLength, 100)
        assert.strictEqual(size, 100)
        return { views: [new Uint8Array(40), new Uint8Array(60)] }
      })
      assert.isTrue(Buffer.concat(Option.getOrThrow(small)).equals(tiny))
      // Planned for more than the file holds (it shrank after the size was read): the bytes it has.
      const cut = yield* blobs.getPlaced!(id, (_, size) => {
        fs.truncateSync(path.join(directory, "ab", "cd", id), size - 1000)
        return { views: [new Uint8Array(size - 500), new Uint8Array(500)] }
      })
      const views = Option.getOrThrow(cut)
      assert.strictEqual(views.length, 1)
      assert.strictEqual(views[0]!.byteLength, bytes.byteLength - 1000)
      assert.isTrue(Buffer.from(views[0]!).equals(bytes.subarray(0, bytes.byteLength - 1000)))
    }))

  it.scoped("nothing is written into the views before `ready` settles", () =>
    Effect.gen(function*() {
      const blobs = yield* store(yield* tempDirectory)
      const bytes = new Uint8Array(9 * MiB).fill(5)
      yield* blobs.put(id, bytes)
      const view = new Uint8Array(bytes.byteLength)
      let untouched: boolean | undefined
      const ready = new Promise<void>((resolve) =>
        setTimeout(() => {
          untouched = view.every((b) => b === 0)
          resolve()
        }, 50)
      )
      const got = yield* blobs.getPlaced!(id, () => ({ views: [view], ready }))
      assert.isTrue(untouched)
      assert.isTrue(Buffer.from(Option.getOrThrow(got)[0]!).equals(bytes))
    }))
})
