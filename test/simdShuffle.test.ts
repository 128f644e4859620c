import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import * as Blocks from "../src/codec/blocks.js"
import * as Compression from "../src/codec/compression.js"
import { shuffle, shuffleJs, unshuffle } from "../src/codec/shuffle.js"
import * as SimdShuffle from "../src/codec/simdShuffle.js"

const policy: Blocks.BlockPolicy = {
  spec: Compression.byName.lz4,
  level: undefined,
  shuffle: true,
  minSize: 0,
  minSavings: 0.03
}

/** `bytes` at `offset` into a larger buffer (an unaligned view when offset is odd). */
const at = (bytes: Uint8Array, offset: number) => {
  const whole = new Uint8Array(offset + bytes.length)
  whole.set(bytes, offset)
  return whole.subarray(offset)
}

describe("WebAssembly SIMD shuffle", () => {
  it("runs on this runtime (Node 20+ has WebAssembly SIMD): the fast path is not silently lost", () => {
    assert.isTrue(SimdShuffle.available)
    assert.isTrue(SimdShuffle.active())
  })

  it("shuffle writes the same bytes as the JS loops for every width, any length and offset", () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.uint8Array({ maxLength: 5000 }),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        (width, bytes, chunks, srcOffset, dstOffset) => {
          // Some inputs span several chunks of the module's memory.
          const plain = chunks === 0
            ? bytes
            : new Uint8Array(chunks * SimdShuffle.CHUNK + bytes.length).map((_, i) => (i * 2654435761) >>> 11)
          if (chunks !== 0) plain.set(bytes, chunks * SimdShuffle.CHUNK)
          const src = at(plain, srcOffset)
          const expected = new Uint8Array(src.length)
          shuffleJs(src, expected, width)
          const actual = at(new Uint8Array(src.length).fill(0xaa), dstOffset)
          shuffle(src, actual, width)
          assert.isTrue(Buffer.from(actual).equals(Buffer.from(expected)))
          const back = new Uint8Array(src.length)
          unshuffle(actual.byteOffset % 4 === 0 ? actual : Uint8Array.from(actual), back, width)
          assert.isTrue(Buffer.from(back).equals(Buffer.from(src)))
        }
      ),
      { numRuns: 300 }
    ))

  it("a block stream written with the SIMD shuffle is the one the JS loops write, and reads back", () => {
    const signal = new Float64Array((3 << 20) / 8 + 13).map((_, i) => Math.sin(i / 500) * 100 + (i % 7) * 1e-4)
    const ids = new Int32Array((1 << 20) + 5).map((_, i) => i * 3)
    for (const [bytes, width] of [[new Uint8Array(signal.buffer), 8], [new Uint8Array(ids.buffer), 4]] as const) {
      const streams = [true, false].map((on) => {
        SimdShuffle.enable(on)
        try {
          const out = new Blocks.Writer(new Uint8Array(Blocks.bound(bytes.length, 1 << 20)), 0)
          assert.isTrue(Blocks.write(out, bytes, width, policy, 1 << 20))
          return out.bytes.subarray(0, out.offset)
        } finally {
          SimdShuffle.enable(true)
        }
      })
      assert.isTrue(Buffer.from(streams[0]!).equals(Buffer.from(streams[1]!)))
      const back = new Uint8Array(bytes.length)
      Blocks.read(new Blocks.Reader(streams[0]!, 0), back)
      assert.isTrue(Buffer.from(back).equals(Buffer.from(bytes)))
    }
  })
})
