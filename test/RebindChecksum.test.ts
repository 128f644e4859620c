/**
 * `rebindChecksum` XORs digit by digit through a table: the same answers as the parse, XOR and
 * format it replaced (written out below), on lower-case hex, and the checksum unchanged for
 * anything else (upper case, short or long strings, non-hex text, signatures).
 */
import * as fc from "fast-check"
import { assert, describe, it } from "vitest"
import { rebindChecksum } from "../src/shared/namespaceKey.js"

const HEX16 = /^[0-9a-f]{16}$/
const xor32 = (a: string, b: string, c: string): string =>
  ((Number.parseInt(a, 16) ^ Number.parseInt(b, 16) ^ Number.parseInt(c, 16)) >>> 0).toString(16).padStart(8, "0")
/** The first implementation. */
const reference = (checksum: string, from: string, to: string): string =>
  !HEX16.test(checksum) || !HEX16.test(from) || !HEX16.test(to)
    ? checksum
    : xor32(checksum.slice(0, 8), from.slice(0, 8), to.slice(0, 8)) +
      xor32(checksum.slice(8, 16), from.slice(8, 16), to.slice(8, 16))

const hex = (min: number, max: number, digits = "0123456789abcdef") =>
  fc.array(fc.constantFrom(...digits), { minLength: min, maxLength: max }).map((d) => d.join(""))
/** Mostly 16 lower-case hex digits, sometimes another character somewhere. */
const almostHex = fc.tuple(hex(16, 16), fc.nat(15), fc.constantFrom("g", "A", "F", " ", "-", "é", "\u0430", "😀"))
  .map(([s, at, c]) => s.slice(0, at) + c + s.slice(at + 1))
const anyInput = fc.oneof(
  hex(16, 16),
  hex(16, 16),
  almostHex,
  hex(0, 20),
  hex(16, 16, "0123456789abcdefABCDEF"),
  fc.string()
)

describe("rebindChecksum", () => {
  it("answers as the parse-and-format version on lower-case hex", () => {
    fc.assert(
      fc.property(hex(16, 16), hex(16, 16), hex(16, 16), (checksum, from, to) => {
        assert.strictEqual(rebindChecksum(checksum, from, to), reference(checksum, from, to))
      }),
      { numRuns: 2_000 }
    )
  })

  it("answers as the parse-and-format version on anything else", () => {
    fc.assert(
      fc.property(anyInput, anyInput, anyInput, (checksum, from, to) => {
        assert.strictEqual(rebindChecksum(checksum, from, to), reference(checksum, from, to))
      }),
      { numRuns: 4_000 }
    )
  })

  it("moves a checksum from one key to another and back", () => {
    const checksum = "0123456789abcdef"
    const from = "ffffffff00000000"
    const to = "00000000ffffffff"
    const moved = rebindChecksum(checksum, from, to)
    assert.strictEqual(moved, "fedcba9876543210")
    assert.strictEqual(rebindChecksum(moved, to, from), checksum)
    assert.strictEqual(rebindChecksum(checksum, from, from), checksum)
    // A signature is left as it is.
    assert.strictEqual(rebindChecksum("hmac:abcdef", from, to), "hmac:abcdef")
  })
})
