/**
 * The JSON-safe description of key parameters, stored beside each entry for display and for
 * `invalidateWhere({ params })` filtering.
 *
 * Deterministic: the same parameters (in any name, Map or Set order) always give the same
 * description, and `canonicalJson` of it is one string, so a filter value described the same way
 * compares equal (`describedEquals`). Unlike the key encoding it is not injective (`{ $bigint: "1" }`
 * the object and `1n` describe alike); it is for people and filters, the key is for identity.
 *
 * | value | description |
 * |---|---|
 * | string, boolean, null, finite number | itself (`-0` → `0`) |
 * | NaN, ±Infinity | `{ $number: "NaN" \| "Infinity" \| "-Infinity" }` |
 * | bigint | `{ $bigint: "123" }` |
 * | undefined in an array | `{ $undefined: true }` (absent as an object property) |
 * | array, plain object | described element-wise, object names sorted |
 * | Date | `{ $date: iso }` |
 * | Map | `{ $map: [[k, v], ...] }` sorted by the canonical JSON of each pair |
 * | Set | `{ $set: [...] }` sorted by canonical JSON |
 * | typed array, DataView, ArrayBuffer | `{ $array: dtype, length, xxh64 }` (element count; bytes for buffers) |
 * | URL (a `file:` URL too) | `{ $url: href }` |
 * | `Key.file(p)`, `Key.dir(p)` | `{ $file: absolute path }`, `{ $dir: absolute path }` (no content hash: describing does no I/O, and a filter naming a path matches every version of its content) |
 * | `toCacheKey()` object | `{ $key: description of what it returns }` |
 *
 * Unhashable values fail with the same `KeyError` and path as the key encoding.
 *
 * @since 0.1.0
 */
import type { KeyParams, ParamsDescription } from "../schema/CacheKey.js"
import { isArrowTable } from "./arrowKey.js"
import {
  Ancestors,
  bytesOf,
  checkNoSymbolKeys,
  describeKind,
  dtypeOf,
  indexSegment,
  isPlainObject,
  KeyPathSignal,
  mapKeySegment,
  mapValueSegment,
  propertySegment,
  setElementSegment,
  sortNames,
  TO_CACHE_KEY_SEGMENT,
  toCacheKeyMethod,
  toKeyError,
  unhashableDescription,
  withEncodedParams,
  withSegment
} from "./encoding.js"
import { PathKey } from "./pathKey.js"
import { KeyError } from "./service.js"

/**
 * Describes `params`; `hashBytes` gives the XXH64 hex of binary contents. Throws `KeyError`.
 *
 * @since 0.1.0
 * @category describe
 */
export const describeParams = (
  params: KeyParams,
  hashBytes: (bytes: Uint8Array) => string,
  method = "Hasher.describe"
): ParamsDescription => {
  if (typeof params !== "object" || params === null || Array.isArray(params) || !isPlainObject(params)) {
    throw new KeyError({
      reason: "InvalidKey",
      method,
      path: "params",
      description: `key parameters must be a plain object of named values, not ${describeKind(params)}`
    })
  }
  try {
    return new Describer(hashBytes).record(params as Record<string, unknown>) as ParamsDescription
  } catch (error) {
    throw toKeyError(error, method)
  }
}

class Describer {
  readonly ancestors = new Ancestors()
  constructor(readonly hashBytes: (bytes: Uint8Array) => string) {}

  value(v: unknown): unknown {
    switch (typeof v) {
      case "string":
      case "boolean":
        return v
      case "number":
        if (Number.isFinite(v)) return v === 0 ? 0 : v
        return { $number: v !== v ? "NaN" : v > 0 ? "Infinity" : "-Infinity" }
      case "bigint":
        return { $bigint: v.toString() }
      case "undefined":
        return { $undefined: true }
      case "object":
        return v === null ? null : this.object(v)
      default:
        throw new KeyPathSignal("Unhashable", unhashableDescription(v))
    }
  }

  object(v: object): unknown {
    if (Array.isArray(v)) return this.array(v)
    const toCacheKey = toCacheKeyMethod(v)
    if (toCacheKey !== undefined) return this.toCacheKey(v, toCacheKey)
    if (isPlainObject(v)) return this.record(v as Record<string, unknown>)
    const dtype = dtypeOf(v)
    if (dtype !== undefined) {
      const length = v instanceof ArrayBuffer || v instanceof DataView
        ? v.byteLength
        : (v as ArrayLike<unknown>).length
      return { $array: dtype.name, length, xxh64: this.hashBytes(bytesOf(v as ArrayBufferView | ArrayBuffer)) }
    }
    if (v instanceof Date) {
      const time = v.getTime()
      if (time !== time) throw new KeyPathSignal("Unhashable", "an invalid Date is not hashable")
      return { $date: v.toISOString() }
    }
    if (v instanceof Map) return this.map(v)
    if (v instanceof Set) return this.set(v)
    if (isArrowTable(v)) {
      // Summarised like a typed array: shape and a content hash (the table's key encoding).
      return {
        $arrow: v.schema.fields.map((field) => field.name),
        rows: v.numRows,
        xxh64: withEncodedParams({ table: v }, this.hashBytes, "Hasher.describe")
      }
    }
    const special = describeSpecialValue(v)
    if (special !== undefined) return special
    throw new KeyPathSignal("Unhashable", unhashableDescription(v))
  }

  array(v: ReadonlyArray<unknown>): Array<unknown> {
    this.ancestors.enter(v)
    const out: Array<unknown> = []
    let i = 0
    try {
      for (; i < v.length; i++) out.push(this.value(v[i]))
    } catch (error) {
      throw withSegment(error, indexSegment(i))
    }
    this.ancestors.leave()
    return out
  }

  record(v: Record<string, unknown>): Record<string, unknown> {
    this.ancestors.enter(v)
    checkNoSymbolKeys(v)
    const names = sortNames(Object.keys(v))
    const out: Record<string, unknown> = {}
    let name = ""
    try {
      for (let i = 0; i < names.length; i++) {
        name = names[i]
        const value = v[name]
        if (value !== undefined) setProperty(out, name, this.value(value))
      }
    } catch (error) {
      throw withSegment(error, propertySegment(name))
    }
    this.ancestors.leave()
    return out
  }

  toCacheKey(v: object, method: (this: unknown) => unknown): unknown {
    this.ancestors.enter(v)
    let result: unknown
    try {
      result = method.call(v)
    } catch (error) {
      throw new KeyPathSignal("Unhashable", `toCacheKey() threw: ${String((error as Error)?.message ?? error)}`, error)
    }
    let described: unknown
    try {
      described = this.value(result)
    } catch (error) {
      throw withSegment(error, TO_CACHE_KEY_SEGMENT)
    }
    this.ancestors.leave()
    return { $key: described }
  }

  map(v: ReadonlyMap<unknown, unknown>): unknown {
    this.ancestors.enter(v)
    const pairs: Array<[unknown, unknown]> = []
    let index = 0
    for (const [key, value] of v) {
      let k: unknown
      try {
        k = this.value(key)
      } catch (error) {
        throw withSegment(error, mapKeySegment(index))
      }
      try {
        pairs.push([k, this.value(value)])
      } catch (error) {
        throw withSegment(error, mapValueSegment(key, index))
      }
      index++
    }
    this.ancestors.leave()
    return { $map: sortCanonically(pairs) }
  }

  set(v: ReadonlySet<unknown>): unknown {
    this.ancestors.enter(v)
    const elements: Array<unknown> = []
    let index = 0
    for (const element of v) {
      try {
        elements.push(this.value(element))
      } catch (error) {
        throw withSegment(error, setElementSegment(index))
      }
      index++
    }
    this.ancestors.leave()
    return { $set: sortCanonically(elements) }
  }
}

/**
 * The description of values with a meaning beyond their structure (see `encodeSpecialValue` in
 * encoding.ts, which this must mirror). Returns undefined when not special.
 *
 * @since 0.1.0
 * @category special values
 */
const describeSpecialValue = (value: object): unknown => {
  if (value instanceof URL) return { $url: value.href }
  if (value instanceof PathKey) return value.kind === "file" ? { $file: value.path } : { $dir: value.path }
  return undefined
}

// A name like "__proto__" (JSON.parse makes such own properties) must stay a plain data property.
const setProperty = (target: Record<string, unknown>, name: string, value: unknown): void => {
  if (name === "__proto__") {
    Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true })
  } else {
    target[name] = value
  }
}

const sortCanonically = <A>(items: Array<A>): Array<A> => {
  const keyed = items.map((item) => [canonicalJson(item), item] as const)
  keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  return keyed.map((entry) => entry[1])
}

/**
 * JSON with object names sorted (UTF-16 code unit order) at every level: one string per value.
 *
 * @since 0.1.0
 * @category describe
 */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") {
    // JSON.stringify(undefined) is undefined; inside JSON, a missing value reads as null.
    return JSON.stringify(value) ?? "null"
  }
  if (Array.isArray(value)) {
    let out = "["
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i])
    return out + "]"
  }
  const names = sortNames(Object.keys(value))
  let out = "{"
  let first = true
  for (const name of names) {
    const item = (value as Record<string, unknown>)[name]
    if (item === undefined) continue
    out += (first ? "" : ",") + JSON.stringify(name) + ":" + canonicalJson(item)
    first = false
  }
  return out + "}"
}

/**
 * Whether two descriptions are the same value, regardless of object name order.
 *
 * @since 0.1.0
 * @category describe
 */
export const describedEquals = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b)

/**
 * Whether a stored description has every name of `filter` with an equal described value — the
 * `invalidateWhere({ params })` rule.
 *
 * @since 0.1.0
 * @category describe
 */
export const describedContains = (description: ParamsDescription, filter: ParamsDescription): boolean => {
  for (const name of Object.keys(filter)) {
    if (!Object.prototype.hasOwnProperty.call(description, name)) return false
    if (!describedEquals(description[name], filter[name])) return false
  }
  return true
}
