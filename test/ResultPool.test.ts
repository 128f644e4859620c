import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Cache from "../src/Cache.js"
import type { CacheConfig } from "../src/schema/CacheConfig.js"
import * as BufferPool from "../src/shared/bufferPool.js"
import { tempDir } from "./support/tmp.js"

const MiB = 1 << 20

/** Until a result buffer of `size` bytes is ready (the prefault runs on the threadpool). */
const spareOf = (size: number) =>
  Effect.promise(async () => {
    for (let i = 0; i < 3000 && !BufferPool.sparesReady().includes(size); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return BufferPool.sparesReady().includes(size)
  })

const isZero = (buffer: ArrayBuffer) => Buffer.from(buffer).equals(Buffer.alloc(buffer.byteLength))

describe("result buffers faulted in ahead", () => {
  it.effect("are plain zeroed ArrayBuffers of the exact size, each handed out once", () =>
    Effect.gen(function*() {
      const size = 6 * MiB
      const first = BufferPool.result(size)
      assert.isTrue(first instanceof ArrayBuffer)
      assert.strictEqual(first.byteLength, size)
      assert.isTrue(yield* spareOf(size), "no spare was prepared after a result was taken")
      const second = BufferPool.result(size)
      assert.isTrue(BufferPool.prefaulted(second))
      assert.notStrictEqual(second, first)
      assert.strictEqual(second.byteLength, size)
      assert.isTrue(isZero(second))
      // Taken: not held any more, so a third result is another buffer again.
      assert.isFalse(BufferPool.sparesReady().includes(size))
      new Uint8Array(first).fill(7)
      assert.isTrue(isZero(second), "a buffer handed out shares memory with another")
      assert.isTrue(yield* spareOf(size))
      const third = BufferPool.result(size)
      assert.notStrictEqual(third, second)
      assert.notStrictEqual(third, first)
      // An ordinary buffer: transferable (the transfer detaches it).
      const moved = structuredClone(third, { transfer: [third] })
      assert.strictEqual(third.byteLength, 0)
      assert.strictEqual(moved.byteLength, size)
      // Small results are not worth a prefault: none is prepared.
      const small = BufferPool.result(MiB)
      assert.strictEqual(small.byteLength, MiB)
      assert.isFalse(BufferPool.prefaulted(small))
      assert.isFalse(BufferPool.sparesReady().includes(MiB))
    }))

  it.scoped(
    "a large array read again decodes into a prefaulted buffer, every byte its own",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const build = (compression: CacheConfig["compression"]) =>
          Layer.build(Cache.layer({ directory, cleanupOnOpen: false, compression })).pipe(
            Effect.map(Context.get(Cache.Cache))
          )
        const array = new Float64Array(MiB).map((_, i) => Math.sin(i / 300) * 100 + (i % 7))
        const ramp = new Int32Array(2 * MiB).map((_, i) => i)
        for (const compression of [undefined, { byKind: { array: { codec: "none" as const } } }]) {
          const cache = yield* build(compression)
          for (const value of [array, ramp]) {
            const key = { value: value.constructor.name, plain: compression !== undefined }
            yield* cache.put(key, value)
            for (let i = 0; i < 3; i++) {
              if (i > 0) assert.isTrue(yield* spareOf(value.byteLength))
              const back = Option.getOrThrow(yield* cache.get(key)) as Float64Array | Int32Array
              assert.strictEqual(Object.getPrototypeOf(back), Object.getPrototypeOf(value))
              assert.strictEqual(back.byteOffset, 0)
              assert.strictEqual(back.buffer.byteLength, value.byteLength)
              // The first read of this size may find a buffer an earlier one prepared; later ones must.
              if (i > 0) assert.isTrue(BufferPool.prefaulted(back.buffer as ArrayBuffer))
              assert.isTrue(Buffer.from(back.buffer).equals(Buffer.from(value.buffer)), "bytes differ")
            }
          }
        }
      }),
    { timeout: 60_000 }
  )
})
