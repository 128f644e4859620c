/**
 * `bindKey` XORs the checksum and the key digit by digit: the same answer as the parse, XOR and
 * format it replaced (written out below), on hex of either case, short strings and non-hex text.
 */
import * as fc from "fast-check"
import { assert, describe, it } from "vitest"
import { bindKey } from "../src/cache/integrity.js"

/** The first implementation: both halves parsed, XORed, formatted. */
const reference = (checksum: string, key: string): string => {
  const hi = (Number.parseInt(checksum.slice(0, 8), 16) ^ Number.parseInt(key.slice(0, 8), 16)) >>> 0
  const lo = (Number.parseInt(checksum.slice(8, 16), 16) ^ Number.parseInt(key.slice(8, 16), 16)) >>> 0
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0")
}

const hexDigit = fc.constantFrom(..."0123456789abcdefABCDEF")
const hex = (min: number, max: number) =>
  fc.array(hexDigit, { minLength: min, maxLength: max }).map((digits) => digits.join(""))
/** Mostly hex, sometimes another character (ASCII or not) somewhere in the first 16. */
const almostHex = fc.tuple(hex(16, 40), fc.nat(15), fc.constantFrom("g", "x", " ", "-", "é", "\u0161", "\u0430", "😀"))
  .map(([s, at, c]) => s.slice(0, at) + c + s.slice(at + 1))

describe("bindKey", () => {
  it("answers as the parse-and-format version on hex keys and checksums", () => {
    fc.assert(
      fc.property(hex(16, 16), hex(16, 48), (checksum, key) => {
        assert.strictEqual(bindKey(checksum, key), reference(checksum, key))
      }),
      { numRuns: 2_000 }
    )
  })

  it("answers as the parse-and-format version on short and non-hex input", () => {
    fc.assert(
      fc.property(
        fc.oneof(hex(0, 15), almostHex, fc.string()),
        fc.oneof(hex(16, 32), almostHex, hex(0, 15)),
        (a, b) => {
          assert.strictEqual(bindKey(a, b), reference(a, b))
          assert.strictEqual(bindKey(b, a), reference(b, a))
        }
      ),
      { numRuns: 2_000 }
    )
  })

  it("is its own inverse and lower-case, zero-padded hex", () => {
    const checksum = "00000000000000ff"
    const key = "00000000000000FF0123"
    assert.strictEqual(bindKey(checksum, key), "0000000000000000")
    assert.strictEqual(bindKey(bindKey("0123456789abcdef", key), key), "0123456789abcdef")
    assert.strictEqual(bindKey("ffffffffffffffff", "0000000000000000"), "ffffffffffffffff")
  })
})
