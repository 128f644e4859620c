import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import * as Lz4Napi from "lz4-napi"
import * as Blocks from "../src/codec/blocks.js"
import * as Compression from "../src/codec/compression.js"
import * as Lz4 from "../src/codec/lz4.js"
import { shuffle, unshuffle } from "../src/codec/shuffle.js"
import * as Simd from "../src/codec/simd.js"
import { compressed, structured } from "./support/lz4Bytes.js"

/** What the JS decoder makes of `block` into `size` bytes: the bytes, or that it threw RangeError. */
const jsDecode = (block: Uint8Array, size: number): Uint8Array | "threw" => {
  const out = new Uint8Array(size)
  try {
    Lz4.decompress(block, out)
    return out
  } catch (error) {
    assert.instanceOf(error, RangeError)
    return "threw"
  }
}

const simdDecode = (block: Uint8Array, size: number): Uint8Array | "threw" => {
  try {
    Simd.decompressToPlanes(block, size)
    return Uint8Array.from(Simd.planes(size))
  } catch (error) {
    assert.instanceOf(error, RangeError)
    return "threw"
  }
}

describe("WebAssembly SIMD kernels", () => {
  it("run on this runtime (Node 20+ has WebAssembly SIMD): the fast path is not silently lost", () => {
    assert.isTrue(Simd.available)
  })

  it("unshuffle matches the JS unshuffle for every width it takes, any length (tails, leftover bytes)", () =>
    fc.assert(
      fc.property(
        fc.constantFrom(2 as const, 4 as const, 8 as const),
        fc.uint8Array({ maxLength: 5000 }),
        fc.integer({ min: 0, max: 3 }),
        (width, bytes, chunks) => {
          // Some inputs span several 128 KiB chunks of the module's memory.
          const src = chunks === 0 ? bytes : new Uint8Array(chunks * Simd.CHUNK + bytes.length).map((_, i) => i * 7)
          if (chunks !== 0) src.set(bytes, chunks * Simd.CHUNK)
          const shuffled = new Uint8Array(src.length)
          shuffle(src, shuffled, width)
          const expected = new Uint8Array(src.length)
          unshuffle(shuffled, expected, width)
          assert.deepStrictEqual(expected, src)
          Simd.planes(src.length).set(shuffled)
          const target = new Uint8Array(src.length)
          Simd.unshuffle(target, width)
          assert.deepStrictEqual(target, src)
        }
      ),
      { numRuns: 200 }
    ))

  it("the LZ4 decoder reads lz4.ts's and lz4-napi's blocks to the same bytes", () =>
    fc.assert(
      fc.property(fc.oneof(structured, fc.uint8Array({ maxLength: 2000 })), (bytes) => {
        const src = Uint8Array.from(bytes)
        assert.deepStrictEqual(simdDecode(compressed(src), src.length), src)
        const theirs = Lz4Napi.compressSync(Buffer.from(src)).subarray(4)
        assert.deepStrictEqual(simdDecode(theirs, src.length), src)
      }),
      { numRuns: 300 }
    ))

  it("damaged blocks: the LZ4 decoder throws RangeError exactly when lz4.ts does, else decodes the same bytes", () =>
    fc.assert(
      fc.property(
        structured,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: -20, max: 20 }),
        fc.integer({ min: 0, max: 8 }),
        (bytes, edits, resize, cut) => {
          const block = Uint8Array.from(compressed(bytes))
          for (const [at, value] of edits) if (block.length > 0) block[at % block.length] = value
          const damaged = block.subarray(0, Math.max(0, block.length - cut))
          const length = Math.max(0, bytes.length + resize)
          assert.deepStrictEqual(simdDecode(damaged, length), jsDecode(damaged, length))
        }
      ),
      { numRuns: 500 }
    ))

  it("crafted blocks breaking each rule throw RangeError, with lz4.ts", () => {
    const cases: ReadonlyArray<readonly [string, ReadonlyArray<number>, number]> = [
      ["empty block", [], 0],
      ["literals past the input", [0x50, 1, 2], 5],
      ["literals past the output", [0x30, 1, 2, 3], 2],
      ["long literal length running off the input", [0xf0, 255, 255], 600],
      ["offset 0", [0x10, 7, 0, 0, 0x10, 7], 6],
      ["offset before the output's start", [0x10, 7, 2, 0, 0x10, 7], 6],
      ["offset far before the output's start", [0x10, 7, 0xff, 0xff, 0x10, 7], 6],
      ["match past the output", [0x1f, 7, 1, 0, 200, 0x10, 7], 20],
      ["truncated offset", [0x10, 7, 1], 5],
      ["long match length running off the input", [0x1f, 7, 1, 0, 255], 600],
      ["output not filled", [0x30, 1, 2, 3], 4]
    ]
    for (const [what, bytes, size] of cases) {
      const block = Uint8Array.from(bytes)
      assert.strictEqual(jsDecode(block, size), "threw", `lz4.ts: ${what}`)
      assert.strictEqual(simdDecode(block, size), "threw", `simd: ${what}`)
    }
    // And one valid block of each copy kind (distance 1, 2–7, 8–15, ≥16), for contrast.
    for (const distance of [1, 3, 9, 20]) {
      const src = new Uint8Array(400).map((_, i) => (i % distance) * 11 + 1)
      assert.deepStrictEqual(simdDecode(compressed(src), src.length), src)
    }
  })

  it("random bytes never decode past their output: same verdict as lz4.ts", () =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 0, max: 600 }), (junk, size) => {
        assert.deepStrictEqual(simdDecode(junk, size), jsDecode(junk, size))
      }),
      { numRuns: 1000 }
    ))

  it("block streams decode to the same bytes with the kernels and with the JS loops (LZ4, gzip; widths 1–8)", () =>
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 6000 }),
        fc.constantFrom(1, 2, 4, 8),
        fc.constantFrom("lz4" as const, "gzip" as const),
        (bytes, width, codec) => {
          // Runs, so blocks compress and take the codec's path rather than being stored raw.
          const raw = new Uint8Array(bytes.length * 2).map((_, i) => bytes[i >> 4] ?? 0)
          const out = new Blocks.Writer(new Uint8Array(Blocks.bound(raw.length, 1024)), 0)
          Blocks.write(out, raw, width, {
            spec: Compression.byName[codec],
            level: undefined,
            shuffle: true,
            minSize: 0,
            minSavings: 0
          }, 1024)
          const stream = out.bytes.subarray(0, out.offset)
          const fast = new Uint8Array(raw.length)
          Blocks.read(new Blocks.Reader(stream, 0), fast)
          const slow = new Uint8Array(raw.length)
          Simd.enable(false)
          try {
            Blocks.read(new Blocks.Reader(stream, 0), slow)
          } finally {
            Simd.enable(true)
          }
          assert.deepStrictEqual(fast, raw)
          assert.deepStrictEqual(slow, raw)
        }
      ),
      { numRuns: 150 }
    ))

  it("block streams of every shuffle width decode through the kernels to the original bytes", () => {
    for (const width of [2, 4, 8]) {
      const values = new Float64Array((3 << 20) / 8 + 5).map((_, i) => Math.sin(i / 300) * 1000 + (i % 7) * 1e-6)
      const raw = new Uint8Array(values.buffer)
      const out = new Blocks.Writer(new Uint8Array(Blocks.bound(raw.length, 1 << 20)), 0)
      Blocks.write(out, raw, width, {
        spec: Compression.byName.lz4,
        level: undefined,
        shuffle: true,
        minSize: 0,
        minSavings: 0.03
      }, 1 << 20)
      const back = new Uint8Array(raw.length)
      Blocks.read(new Blocks.Reader(out.bytes.subarray(0, out.offset), 0), back)
      assert.deepStrictEqual(back, raw)
    }
  })
})
