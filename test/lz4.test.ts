import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import * as Lz4Napi from "lz4-napi"
import * as Lz4 from "../src/codec/lz4.js"
import { compressed, structured } from "./support/lz4Bytes.js"

/** lz4-napi's framing: a u32 LE size, then the block. */
const framed = (size: number, block: Uint8Array) => {
  const out = Buffer.alloc(4 + block.length)
  out.writeUInt32LE(size, 0)
  out.set(block, 4)
  return out
}

describe("lz4 (TypeScript)", () => {
  it("its blocks decode with lz4-napi, and lz4-napi's with it", () =>
    fc.assert(
      fc.property(fc.oneof(structured, fc.uint8Array({ maxLength: 2000 })), (bytes) => {
        const src = Buffer.from(bytes)
        const mine = compressed(src)
        assert.isTrue(Buffer.from(Lz4Napi.uncompressSync(framed(src.length, mine))).equals(src))
        const theirs = Lz4Napi.compressSync(src).subarray(4)
        const back = new Uint8Array(src.length)
        Lz4.decompress(theirs, back)
        assert.isTrue(Buffer.from(back).equals(src))
        const own = new Uint8Array(src.length)
        Lz4.decompress(mine, own)
        assert.isTrue(Buffer.from(own).equals(src))
      }),
      { numRuns: 300 }
    ))

  it("gives up (-1) rather than write past the limit, and honours it otherwise", () =>
    fc.assert(
      fc.property(
        fc.oneof(structured, fc.uint8Array({ maxLength: 2000 })),
        fc.integer({ min: 0, max: 3000 }),
        (bytes, limit) => {
          const out = new Uint8Array(limit + 64).fill(0xee)
          const length = Lz4.compress(bytes, out, 32, limit)
          if (length >= 0) {
            assert.isAtMost(length, limit)
            const back = new Uint8Array(bytes.length)
            Lz4.decompress(out.subarray(32, 32 + length), back)
            assert.deepStrictEqual(back, Uint8Array.from(bytes))
          }
          for (let i = 0; i < 32; i++) assert.strictEqual(out[i], 0xee)
          for (let i = 32 + limit; i < out.length; i++) assert.strictEqual(out[i], 0xee)
        }
      ),
      { numRuns: 300 }
    ))

  it("damaged blocks throw RangeError or decode to the exact length, never overrun", () =>
    fc.assert(
      fc.property(
        structured,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: -20, max: 20 }),
        (bytes, edits, resize) => {
          const block = Uint8Array.from(compressed(bytes))
          for (const [at, value] of edits) if (block.length > 0) block[at % block.length] = value
          const length = Math.max(0, bytes.length + resize)
          const dst = new Uint8Array(length + 16).fill(0xee)
          try {
            Lz4.decompress(block, dst.subarray(0, length))
          } catch (error) {
            assert.instanceOf(error, RangeError)
          }
          for (let i = length; i < dst.length; i++) assert.strictEqual(dst[i], 0xee)
        }
      ),
      { numRuns: 500 }
    ))
})
