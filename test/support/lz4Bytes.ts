/** Inputs for the LZ4 tests: bytes shaped like shuffled arrays, and their LZ4 blocks. */
import { assert } from "@effect/vitest"
import fc from "fast-check"
import * as Lz4 from "../../src/codec/lz4.js"

/** Bytes with the structure LZ4 meets in shuffled arrays: runs, repeats at many distances, noise. */
export const structured = fc.array(
  fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.record({ byte: fc.integer({ min: 0, max: 255 }), length: fc.integer({ min: 1, max: 5000 }) }).map((
      { byte, length }
    ) => new Uint8Array(length).fill(byte)),
    fc.record({ pattern: fc.uint8Array({ minLength: 1, maxLength: 70 }), times: fc.integer({ min: 1, max: 400 }) }).map(
      ({ pattern, times }) => {
        const out = new Uint8Array(pattern.length * times)
        for (let i = 0; i < times; i++) out.set(pattern, i * pattern.length)
        return out
      }
    )
  ),
  { maxLength: 12 }
).map((parts) => Buffer.concat(parts))

export const compressed = (src: Uint8Array): Uint8Array => {
  const out = new Uint8Array(Lz4.bound(src.length))
  const length = Lz4.compress(src, out, 0, out.length)
  assert.isAtLeast(length, 0)
  return out.subarray(0, length)
}
