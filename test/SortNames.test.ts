/**
 * `sortNames` (the object names of a key and its description, by insertion when few) orders names
 * exactly as `Array.prototype.sort()` does: UTF-16 code units, any names, any count. Keys hashed
 * before the change must hash the same after it.
 */
import * as fc from "fast-check"
import { assert, describe, it } from "vitest"
import { sortNames } from "../src/key/encoding.js"

/** Names as objects have them: short ASCII, any Unicode (surrogate pairs included), digits-like. */
const name = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.string({ unit: "binary", maxLength: 6 }),
  fc.constantFrom("a", "A", "_", "$", "é", "e\u0301", "😀", "\uffff", "10", "9", "")
)

describe("sortNames", () => {
  it("orders as the builtin sort, for the few names of a key and for many", () => {
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 40 }), (names) => {
        const expected = names.slice().sort()
        const sorted = sortNames(names.slice())
        assert.deepStrictEqual(sorted, expected)
      }),
      { numRuns: 3_000 }
    )
  })

  it("sorts in place and returns the same array", () => {
    const names = ["version", "region", "user", "batch"]
    assert.strictEqual(sortNames(names), names)
    assert.deepStrictEqual(names, ["batch", "region", "user", "version"])
  })
})
