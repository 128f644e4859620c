import { isDeepStrictEqual } from "node:util"

/**
 * Node's deep equality, not chai's (chai sorts a Set's members as strings, and throws on a member it
 * cannot convert: fast-check found `new Set([{ toString: new Date(0) }])`). Node 20 calls two
 * Invalid Dates unequal (it compares their times with `!==`), so both sides are compared with each
 * Date replaced by its time as a string. Comparing V8 serializations instead is not enough: an empty
 * array V8 wrote as dense comes back one it writes as sparse, the same value in other bytes
 * (fast-check found `new Map([[[], 0n], ["", new Date(NaN)]])`).
 */
const comparable = (value: unknown, seen = new Map<object, unknown>()): unknown => {
  if (value instanceof Date) return { time: String(value.getTime()) }
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return value
  // A cycle stays a cycle: each object is copied once.
  if (seen.has(value)) return seen.get(value)
  if (value instanceof Map) {
    const copy = new Map<unknown, unknown>()
    seen.set(value, copy)
    for (const [key, item] of value) copy.set(comparable(key, seen), comparable(item, seen))
    return copy
  }
  if (value instanceof Set) {
    const copy = new Set<unknown>()
    seen.set(value, copy)
    for (const item of value) copy.add(comparable(item, seen))
    return copy
  }
  const prototype = Object.getPrototypeOf(value)
  const plain = prototype === Object.prototype || prototype === null
  if (!Array.isArray(value) && !plain) return value
  const copy: object = Array.isArray(value) ? new Array(value.length) : Object.create(prototype)
  seen.set(value, copy)
  for (const key of Object.keys(value)) {
    Object.defineProperty(copy, key, {
      value: comparable((value as Record<string, unknown>)[key], seen),
      enumerable: true,
      writable: true,
      configurable: true
    })
  }
  return copy
}

/** Whether `a` and `b` are the same structured-clone value (see `comparable`). */
export const sameValue = (a: unknown, b: unknown): boolean => isDeepStrictEqual(comparable(a), comparable(b))
