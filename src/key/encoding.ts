/**
 * The canonical, unambiguous byte encoding of named key parameters.
 *
 * The layout is part of the public contract: a `CacheKey` is XXH64 of these bytes, and keys must not
 * drift between releases (the golden vectors in `test/Hasher.test.ts` pin it). Change nothing here
 * without bumping `ENCODING_VERSION`, which invalidates every stored key.
 *
 * Layout (all integers little-endian):
 *
 * ```
 * params     = version:u8(=1) object
 * value      = tag:u8 payload
 *   0x01 undefined     (only as an array slot: holes and `undefined` elements; position matters)
 *   0x02 null
 *   0x03 false         0x04 true
 *   0x05 number        f64; -0 is written as 0, every NaN as 0x7ff8000000000000
 *   0x06 bigint        u32 length + ASCII signed decimal ("-12")
 *   0x07 string        u32 byte length + UTF-8 (lone surrogates become U+FFFD, as TextEncoder does)
 *   0x08 array         u32 count + values
 *   0x09 object        u32 count + (u32 length + UTF-8 name, value)*, names sorted by UTF-16 code
 *                      units (JS default sort); `undefined`-valued names are absent
 *   0x0a Map           u32 count + (key value, value value)*, entries sorted by their encoded bytes
 *   0x0b Set           u32 count + values, sorted by their encoded bytes
 *   0x0c Date          f64 epoch milliseconds (an invalid Date is a KeyError)
 *   0x0d binary        dtype:u8 + u64 byte length + bytes (typed arrays little-endian)
 *   0x0e toCacheKey()  value (the encoding of what the method returned)
 *   0x0f URL           u32 byte length + UTF-8 href (also a `file:` URL keyed by path, see below)
 *   0x10 file content  u32 length + 16 hex digits: XXH64 of the file's bytes (`Key.file`, `file:` URL)
 *   0x11 dir content   u32 length + 16 hex digits: XXH64 of the directory listing (see pathHashing.ts)
 *   0x12 path          kind:u8 (1 file, 2 dir) + u32 byte length + UTF-8 absolute path: a `Key.file`
 *                      / `Key.dir` keyed by its path (`hashPathContent: false`, or a missing path)
 *   0x13 Arrow table   value: the object { schema, rows, columns } of `canonicalTable` (arrowKey.ts)
 * ```
 *
 * Paths are hashed by content only when the caller passes a `PathContext` (the Hasher does, unless
 * `hashPathContent: false`): the encoder is synchronous, so a first pass collects the paths it meets
 * (`PathContext.requests`), the Hasher hashes them asynchronously, and a second pass encodes the
 * digests. Without a context, `Key.file`/`Key.dir` encode as 0x12 and `file:` URLs as 0x0f.
 *
 * Everything else — functions, symbols, class instances without `toCacheKey()`, WeakMap, Promise,
 * cycles — throws a `KeyError` whose `path` names the offending location (see `formatPath`).
 *
 * @since 0.1.0
 */
import { fileURLToPath } from "node:url"
import type { KeyParams } from "../schema/CacheKey.js"
import { canonicalTable, isArrowTable } from "./arrowKey.js"
import { PathKey } from "./pathKey.js"
import { KeyError } from "./service.js"

/**
 * Version byte written first; bump it (and the golden vectors) whenever the layout changes.
 *
 * @since 0.1.0
 * @category constants
 */
export const ENCODING_VERSION = 1

const TAG_UNDEFINED = 0x01
const TAG_NULL = 0x02
const TAG_FALSE = 0x03
const TAG_TRUE = 0x04
const TAG_NUMBER = 0x05
const TAG_BIGINT = 0x06
const TAG_STRING = 0x07
const TAG_ARRAY = 0x08
const TAG_OBJECT = 0x09
const TAG_MAP = 0x0a
const TAG_SET = 0x0b
const TAG_DATE = 0x0c
const TAG_BINARY = 0x0d
const TAG_TO_CACHE_KEY = 0x0e
const TAG_URL = 0x0f
const TAG_FILE_CONTENT = 0x10
const TAG_DIR_CONTENT = 0x11
const TAG_PATH = 0x12
const TAG_ARROW_TABLE = 0x13

/**
 * A binary dtype: NumPy's name where one exists, its stable code in the encoding, and the element
 * size (bytes swapped to little-endian on big-endian hosts).
 *
 * @since 0.1.0
 * @category models
 */
export interface Dtype {
  readonly name: string
  readonly code: number
  readonly elementSize: number
}

// Keyed by `Symbol.toStringTag`, which typed-array subclasses (Buffer) inherit from their base.
// Codes are part of the encoding: append, never renumber.
const DTYPES: ReadonlyMap<string, Dtype> = new Map<string, Dtype>([
  ["Int8Array", { name: "int8", code: 1, elementSize: 1 }],
  ["Uint8Array", { name: "uint8", code: 2, elementSize: 1 }],
  ["Uint8ClampedArray", { name: "uint8clamped", code: 3, elementSize: 1 }],
  ["Int16Array", { name: "int16", code: 4, elementSize: 2 }],
  ["Uint16Array", { name: "uint16", code: 5, elementSize: 2 }],
  ["Int32Array", { name: "int32", code: 6, elementSize: 4 }],
  ["Uint32Array", { name: "uint32", code: 7, elementSize: 4 }],
  ["BigInt64Array", { name: "int64", code: 8, elementSize: 8 }],
  ["BigUint64Array", { name: "uint64", code: 9, elementSize: 8 }],
  ["Float16Array", { name: "float16", code: 10, elementSize: 2 }],
  ["Float32Array", { name: "float32", code: 11, elementSize: 4 }],
  ["Float64Array", { name: "float64", code: 12, elementSize: 8 }],
  ["DataView", { name: "dataview", code: 13, elementSize: 1 }],
  ["ArrayBuffer", { name: "arraybuffer", code: 14, elementSize: 1 }]
])

/**
 * The dtype of a typed array, `DataView` or `ArrayBuffer`, or `undefined` for anything else.
 *
 * @since 0.1.0
 * @category binary
 */
export const dtypeOf = (value: object): Dtype | undefined => {
  if (ArrayBuffer.isView(value)) return DTYPES.get((value as any)[Symbol.toStringTag] ?? "DataView")
  if (value instanceof ArrayBuffer) return DTYPES.get("ArrayBuffer")
  return undefined
}

/**
 * The bytes of a binary value as a view (no copy), in host byte order.
 *
 * @since 0.1.0
 * @category binary
 */
export const bytesOf = (value: ArrayBufferView | ArrayBuffer): Uint8Array =>
  value instanceof ArrayBuffer
    ? new Uint8Array(value)
    : new Uint8Array(value.buffer, value.byteOffset, value.byteLength)

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

// ---------------------------------------------------------------------------------------------
// Errors and paths
// ---------------------------------------------------------------------------------------------

/**
 * Thrown inside the encoder; each container it unwinds through prepends its path segment, so the
 * hot path never builds path strings. Converted to a `KeyError` at the top.
 *
 * @since 0.1.0
 * @category errors
 */
export class KeyPathSignal {
  /** Path segments innermost first, e.g. `["[3]", ".items"]`. */
  readonly segments: Array<string> = []
  constructor(
    readonly reason: "Unhashable" | "InvalidKey" | "Unreadable",
    readonly description: string,
    readonly cause?: unknown
  ) {}
}

/**
 * Adds a path segment to an error unwinding through a container; foreign exceptions (a getter or
 * `toCacheKey()` that threw, stack overflow) become signals so they get a path too.
 *
 * @since 0.1.0
 * @category errors
 */
export const withSegment = (error: unknown, segment: string): KeyPathSignal => {
  const signal = error instanceof KeyPathSignal
    ? error
    : new KeyPathSignal("Unhashable", `reading this value threw: ${errorText(error)}`, error)
  signal.segments.push(segment)
  return signal
}

const errorText = (error: unknown): string => error instanceof Error ? error.message : String(error)

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/**
 * The path segment of an object property: `.name`, or `["odd name"]` when not an identifier.
 *
 * @since 0.1.0
 * @category errors
 */
export const propertySegment = (name: string): string =>
  IDENTIFIER.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`

/**
 * The path segment of an array element: `[3]`.
 *
 * @since 0.1.0
 * @category errors
 */
export const indexSegment = (index: number): string => `[${index}]`

/**
 * The path segment of a Map value: `<Map value for "a">`, or `<Map value #2>` for a non-primitive key.
 *
 * @since 0.1.0
 * @category errors
 */
export const mapValueSegment = (key: unknown, index: number): string => {
  const label = primitiveLabel(key)
  return label === undefined ? `<Map value #${index}>` : `<Map value for ${label}>`
}

/**
 * The path segment of a Map key: `<Map key #2>` (the key's position in insertion order).
 *
 * @since 0.1.0
 * @category errors
 */
export const mapKeySegment = (index: number): string => `<Map key #${index}>`

/**
 * The path segment of a Set element: `<Set element #2>` (its position in insertion order).
 *
 * @since 0.1.0
 * @category errors
 */
export const setElementSegment = (index: number): string => `<Set element #${index}>`

/**
 * The path segment of what a `toCacheKey()` method returned: `.toCacheKey()`.
 *
 * @since 0.1.0
 * @category errors
 */
export const TO_CACHE_KEY_SEGMENT = ".toCacheKey()"

const primitiveLabel = (key: unknown): string | undefined => {
  switch (typeof key) {
    case "string":
      return JSON.stringify(key)
    case "number":
    case "boolean":
      return String(key)
    case "bigint":
      return `${key}n`
    default:
      return key === null ? "null" : undefined
  }
}

/**
 * Builds the `KeyError` for a signal: the path reads outermost first, rooted at `params`.
 *
 * @since 0.1.0
 * @category errors
 */
export const toKeyError = (error: unknown, method: string): KeyError => {
  if (error instanceof KeyError) return error
  const signal = error instanceof KeyPathSignal
    ? error
    : new KeyPathSignal("Unhashable", `encoding failed: ${errorText(error)}`, error)
  let path = "params"
  for (let i = signal.segments.length - 1; i >= 0; i--) path += signal.segments[i]
  return new KeyError({
    reason: signal.reason,
    method,
    path,
    description: signal.description,
    cause: signal.cause
  })
}

/**
 * Why a value cannot be part of a key, for the error message.
 *
 * @since 0.1.0
 * @category errors
 */
export const unhashableDescription = (value: unknown): string => {
  switch (typeof value) {
    case "function":
      return `a function${
        value.name ? ` (${value.name})` : ""
      } is not hashable; pass data that identifies it, or give it a toCacheKey() method`
    case "symbol":
      return `a symbol (${value.toString()}) is not hashable`
    case "object": {
      const name = constructorName(value as object)
      return `${
        name === undefined ? "an object with a custom prototype" : `a ${name}`
      } is not hashable; give it a toCacheKey() method or pass plain data`
    }
    default:
      return `a value of type ${typeof value} is not hashable`
  }
}

const constructorName = (value: object): string | undefined => {
  try {
    const name = (value as any).constructor?.name
    return typeof name === "string" && name !== "" ? name : undefined
  } catch {
    return undefined
  }
}

/** Deeper than this is almost surely a `toCacheKey()` that returns a fresh copy of itself. */
const MAX_DEPTH = 1000

/**
 * Tracks the containers being encoded, for cycle detection and the depth limit. A linear scan beats
 * a `Set` here: keys are shallow, and this avoids an allocation per call.
 *
 * @since 0.1.0
 * @category internals
 */
export class Ancestors {
  private readonly stack: Array<object | undefined> = []
  private depth = 0

  enter(value: object): void {
    const stack = this.stack
    for (let i = 0; i < this.depth; i++) {
      if (stack[i] === value) {
        throw new KeyPathSignal("Unhashable", "cycle: this value contains itself")
      }
    }
    if (this.depth >= MAX_DEPTH) {
      throw new KeyPathSignal("Unhashable", `nested deeper than ${MAX_DEPTH} levels`)
    }
    stack[this.depth++] = value
  }

  leave(): void {
    this.stack[--this.depth] = undefined
  }

  /** Forget everything, e.g. after an error unwound without `leave`. */
  reset(): void {
    for (let i = 0; i < this.depth; i++) this.stack[i] = undefined
    this.depth = 0
  }
}

/**
 * Plain objects: `{}` literals, `Object.create(null)`, and objects from another realm (`vm`).
 *
 * @since 0.1.0
 * @category guards
 */
export const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) return true
  // Another realm's Object.prototype: its own prototype is null and its constructor is "Object".
  return Object.getPrototypeOf(proto) === null && typeof proto.constructor === "function" &&
    proto.constructor.name === "Object"
}

/**
 * The `toCacheKey` method of a value, if it has one.
 *
 * @since 0.1.0
 * @category guards
 */
export const toCacheKeyMethod = (value: object): ((this: unknown) => unknown) | undefined => {
  const method = (value as { readonly toCacheKey?: unknown }).toCacheKey
  return typeof method === "function" ? method as (this: unknown) => unknown : undefined
}

/**
 * Sorts object names in place in the order `Array.prototype.sort()` gives strings (UTF-16 code
 * units), by insertion for the few names of a typical key. The builtin costs ~240 ns a call for 4
 * names and insertion ~40 (measured); every put and get sorts at least once, a put twice (the key
 * and its stored description).
 *
 * @since 0.1.0
 * @category encoding
 */
export const sortNames = (names: Array<string>): Array<string> => {
  if (names.length > 16) return names.sort()
  for (let i = 1; i < names.length; i++) {
    const name = names[i]
    let j = i - 1
    while (j >= 0 && names[j] > name) {
      names[j + 1] = names[j]
      j--
    }
    names[j + 1] = name
  }
  return names
}

/**
 * Own enumerable symbol-keyed properties would be silently ignored by `Object.keys`; fail instead.
 *
 * @since 0.1.0
 * @category guards
 */
export const checkNoSymbolKeys = (value: object): void => {
  const symbols = Object.getOwnPropertySymbols(value)
  for (let i = 0; i < symbols.length; i++) {
    if (Object.prototype.propertyIsEnumerable.call(value, symbols[i])) {
      throw new KeyPathSignal(
        "Unhashable",
        `a property named by a symbol (${symbols[i].toString()}) is not hashable`
      )
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

const INITIAL_CAPACITY = 4096
// A key holding a big typed array grows the buffer; don't keep that memory for the process lifetime.
const RETAINED_CAPACITY = 1 << 20
// Below this many UTF-16 units a JS loop beats `encodeInto` (which also needs a subarray view).
const SHORT_STRING = 48

const textEncoder = new TextEncoder()

class Encoder {
  buf: Uint8Array
  view: DataView
  pos = 0
  readonly ancestors = new Ancestors()
  /** Set for the duration of one `withEncodedParams` call: how paths are keyed. */
  paths: PathContext | undefined = undefined

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity)
    this.view = new DataView(this.buf.buffer)
  }

  ensure(extra: number): void {
    const needed = this.pos + extra
    if (needed > this.buf.length) this.grow(needed)
  }

  grow(needed: number): void {
    let capacity = this.buf.length * 2
    while (capacity < needed) capacity *= 2
    const next = new Uint8Array(capacity)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  shrink(): void {
    if (this.buf.length > RETAINED_CAPACITY) {
      this.buf = new Uint8Array(INITIAL_CAPACITY)
      this.view = new DataView(this.buf.buffer)
    }
  }

  u8(byte: number): void {
    if (this.pos >= this.buf.length) this.grow(this.pos + 1)
    this.buf[this.pos++] = byte
  }

  u32(n: number): void {
    this.ensure(4)
    this.view.setUint32(this.pos, n, true)
    this.pos += 4
  }

  f64(x: number): void {
    this.ensure(8)
    if (x !== x) {
      // One NaN: the bit pattern of a NaN is not observable in JS, so it must not reach the key.
      this.view.setUint32(this.pos, 0, true)
      this.view.setUint32(this.pos + 4, 0x7ff80000, true)
    } else {
      this.view.setFloat64(this.pos, x === 0 ? 0 : x, true)
    }
    this.pos += 8
  }

  string(s: string): void {
    const length = s.length
    this.ensure(4 + length * 3)
    const start = this.pos + 4
    let p = start
    if (length <= SHORT_STRING) {
      const buf = this.buf
      for (let i = 0; i < length; i++) {
        const c = s.charCodeAt(i)
        if (c < 0x80) {
          buf[p++] = c
        } else if (c < 0x800) {
          buf[p++] = 0xc0 | (c >> 6)
          buf[p++] = 0x80 | (c & 0x3f)
        } else if (c < 0xd800 || c > 0xdfff) {
          buf[p++] = 0xe0 | (c >> 12)
          buf[p++] = 0x80 | ((c >> 6) & 0x3f)
          buf[p++] = 0x80 | (c & 0x3f)
        } else {
          const d = c <= 0xdbff && i + 1 < length ? s.charCodeAt(i + 1) : 0
          if (d >= 0xdc00 && d <= 0xdfff) {
            const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000
            buf[p++] = 0xf0 | (cp >> 18)
            buf[p++] = 0x80 | ((cp >> 12) & 0x3f)
            buf[p++] = 0x80 | ((cp >> 6) & 0x3f)
            buf[p++] = 0x80 | (cp & 0x3f)
            i++
          } else {
            // A lone surrogate: U+FFFD, exactly what TextEncoder (the long-string path) writes.
            buf[p++] = 0xef
            buf[p++] = 0xbf
            buf[p++] = 0xbd
          }
        }
      }
    } else {
      p += textEncoder.encodeInto(s, this.buf.subarray(start)).written
    }
    this.view.setUint32(this.pos, p - start, true)
    this.pos = p
  }

  value(v: unknown): void {
    switch (typeof v) {
      case "string":
        this.u8(TAG_STRING)
        this.string(v)
        return
      case "number":
        this.u8(TAG_NUMBER)
        this.f64(v)
        return
      case "boolean":
        this.u8(v ? TAG_TRUE : TAG_FALSE)
        return
      case "bigint":
        this.u8(TAG_BIGINT)
        this.string(v.toString())
        return
      case "undefined":
        // Only reachable for array slots: object properties holding undefined are skipped.
        this.u8(TAG_UNDEFINED)
        return
      case "object":
        if (v === null) {
          this.u8(TAG_NULL)
          return
        }
        this.object(v)
        return
      default:
        throw new KeyPathSignal("Unhashable", unhashableDescription(v))
    }
  }

  object(v: object): void {
    if (Array.isArray(v)) return this.array(v)
    const toCacheKey = toCacheKeyMethod(v)
    if (toCacheKey !== undefined) return this.toCacheKey(v, toCacheKey)
    if (isPlainObject(v)) return this.record(v as Record<string, unknown>)
    const dtype = dtypeOf(v)
    if (dtype !== undefined) return this.binary(v as ArrayBufferView | ArrayBuffer, dtype)
    if (v instanceof Date) {
      const time = v.getTime()
      if (time !== time) throw new KeyPathSignal("Unhashable", "an invalid Date is not hashable")
      this.u8(TAG_DATE)
      this.f64(time)
      return
    }
    if (v instanceof Map) return this.map(v)
    if (v instanceof Set) return this.set(v)
    if (encodeSpecialValue(this, v)) return
    throw new KeyPathSignal("Unhashable", unhashableDescription(v))
  }

  array(v: ReadonlyArray<unknown>): void {
    this.ancestors.enter(v)
    const length = v.length
    this.u8(TAG_ARRAY)
    this.u32(length)
    let i = 0
    try {
      for (; i < length; i++) this.value(v[i])
    } catch (error) {
      throw withSegment(error, indexSegment(i))
    }
    this.ancestors.leave()
  }

  record(v: Record<string, unknown>): void {
    this.ancestors.enter(v)
    checkNoSymbolKeys(v)
    const names = Object.keys(v)
    sortNames(names)
    this.u8(TAG_OBJECT)
    this.ensure(4)
    const countAt = this.pos
    this.pos += 4
    let count = 0
    let name = ""
    try {
      for (let i = 0; i < names.length; i++) {
        name = names[i]
        const value = v[name]
        if (value === undefined) continue
        this.string(name)
        this.value(value)
        count++
      }
    } catch (error) {
      throw withSegment(error, propertySegment(name))
    }
    this.view.setUint32(countAt, count, true)
    this.ancestors.leave()
  }

  toCacheKey(v: object, method: (this: unknown) => unknown): void {
    this.ancestors.enter(v)
    let result: unknown
    try {
      result = method.call(v)
    } catch (error) {
      throw new KeyPathSignal("Unhashable", `toCacheKey() threw: ${errorText(error)}`, error)
    }
    this.u8(TAG_TO_CACHE_KEY)
    try {
      this.value(result)
    } catch (error) {
      throw withSegment(error, TO_CACHE_KEY_SEGMENT)
    }
    this.ancestors.leave()
  }

  binary(v: ArrayBufferView | ArrayBuffer, dtype: Dtype): void {
    const bytes = bytesOf(v)
    const length = bytes.length
    this.ensure(10 + length)
    this.buf[this.pos++] = TAG_BINARY
    this.buf[this.pos++] = dtype.code
    this.view.setUint32(this.pos, length >>> 0, true)
    this.view.setUint32(this.pos + 4, Math.floor(length / 0x100000000), true)
    this.pos += 8
    this.buf.set(bytes, this.pos)
    if (!LITTLE_ENDIAN_HOST && dtype.elementSize > 1) swapBytes(this.buf, this.pos, length, dtype.elementSize)
    this.pos += length
  }

  map(v: ReadonlyMap<unknown, unknown>): void {
    this.ancestors.enter(v)
    this.u8(TAG_MAP)
    this.u32(v.size)
    if (v.size > 0) {
      const base = this.pos
      const bounds: Array<number> = []
      let index = 0
      for (const [key, value] of v) {
        bounds.push(this.pos)
        try {
          this.value(key)
        } catch (error) {
          throw withSegment(error, mapKeySegment(index))
        }
        try {
          this.value(value)
        } catch (error) {
          throw withSegment(error, mapValueSegment(key, index))
        }
        index++
      }
      bounds.push(this.pos)
      this.sortRanges(base, bounds)
    }
    this.ancestors.leave()
  }

  set(v: ReadonlySet<unknown>): void {
    this.ancestors.enter(v)
    this.u8(TAG_SET)
    this.u32(v.size)
    if (v.size > 0) {
      const base = this.pos
      const bounds: Array<number> = []
      let index = 0
      for (const element of v) {
        bounds.push(this.pos)
        try {
          this.value(element)
        } catch (error) {
          throw withSegment(error, setElementSegment(index))
        }
        index++
      }
      bounds.push(this.pos)
      this.sortRanges(base, bounds)
    }
    this.ancestors.leave()
  }

  /**
   * Reorders the encoded entries between `bounds[i]` and `bounds[i + 1]` into byte order, which
   * makes Maps and Sets unordered. Encodings are prefix-free, so byte order is a total order.
   */
  sortRanges(base: number, bounds: ReadonlyArray<number>): void {
    const count = bounds.length - 1
    if (count < 2) return
    const buf = this.buf
    const order: Array<number> = []
    for (let i = 0; i < count; i++) order.push(i)
    order.sort((a, b) => compareRanges(buf, bounds[a], bounds[a + 1], bounds[b], bounds[b + 1]))
    const copy = buf.slice(base, this.pos)
    let p = base
    for (let i = 0; i < count; i++) {
      const j = order[i]
      const from = bounds[j] - base
      const to = bounds[j + 1] - base
      buf.set(copy.subarray(from, to), p)
      p += to - from
    }
  }
}

const compareRanges = (buf: Uint8Array, a: number, aEnd: number, b: number, bEnd: number): number => {
  const aLength = aEnd - a
  const bLength = bEnd - b
  const length = aLength < bLength ? aLength : bLength
  for (let i = 0; i < length; i++) {
    const d = buf[a + i] - buf[b + i]
    if (d !== 0) return d
  }
  return aLength - bLength
}

const swapBytes = (buf: Uint8Array, start: number, length: number, size: number): void => {
  for (let p = start; p < start + length; p += size) {
    for (let i = 0, j = size - 1; i < j; i++, j--) {
      const t = buf[p + i]
      buf[p + i] = buf[p + j]
      buf[p + j] = t
    }
  }
}

/**
 * What hashing a path found: its content digest, that it does not exist (keyed by its path then),
 * or why it could not be read (a `KeyError` at the path's location inside the key).
 *
 * @since 0.1.0
 * @category paths
 */
export type PathDigest =
  | { readonly _tag: "File"; readonly hash: string }
  | { readonly _tag: "Dir"; readonly hash: string }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Failed"; readonly description: string; readonly cause?: unknown }

/**
 * A path met while encoding: `auto` for a `file:` URL (file or directory, whichever it is).
 *
 * @since 0.1.0
 * @category paths
 */
export interface PathRequest {
  readonly id: string
  readonly kind: "file" | "dir" | "auto"
  readonly path: string
}

/**
 * How one encoding keys paths by content. Digests are looked up by `PathRequest.id` (kind and
 * absolute path), not by object identity, so a `toCacheKey()` returning a fresh `Key.file(...)` on
 * each call still finds its digest. Paths without a digest are collected in `requests` and encoded
 * by path as a placeholder: the caller must hash them and encode again.
 *
 * @since 0.1.0
 * @category paths
 */
export class PathContext {
  requests: Array<PathRequest> | undefined = undefined
  constructor(readonly digests: ReadonlyMap<string, PathDigest> | undefined = undefined) {}
}

const PATH_KIND_CODE = { file: 1, dir: 2 } as const

const fileUrlPath = (url: URL): string | undefined => {
  try {
    return fileURLToPath(url)
  } catch {
    // A file: URL naming another host is not a local path: keyed by its href.
    return undefined
  }
}

/** Writes the content digest of a path; false when the caller must key it by path instead. */
const encodePathContent = (encoder: Encoder, kind: PathRequest["kind"], absolute: string): boolean => {
  const context = encoder.paths
  if (context === undefined) return false
  const id = `${kind}:${absolute}`
  const digest = context.digests?.get(id)
  if (digest === undefined) {
    ;(context.requests ??= []).push({ id, kind, path: absolute })
    return false
  }
  switch (digest._tag) {
    case "File":
      encoder.u8(TAG_FILE_CONTENT)
      encoder.string(digest.hash)
      return true
    case "Dir":
      encoder.u8(TAG_DIR_CONTENT)
      encoder.string(digest.hash)
      return true
    case "Missing":
      return false
    case "Failed":
      throw new KeyPathSignal("Unreadable", digest.description, digest.cause)
  }
}

/**
 * The hook for values with a meaning beyond their structure: `URL` by its href, `Key.file` /
 * `Key.dir` and `file:` URLs by content when a `PathContext` asks for it (digests resolved
 * beforehand, since encoding is synchronous). Each kind has its own tag. Returns false when not
 * special.
 *
 * @since 0.1.0
 * @category special values
 */
const encodeSpecialValue = (encoder: Encoder, value: object): boolean => {
  if (isArrowTable(value)) {
    encoder.u8(TAG_ARROW_TABLE)
    encoder.value(canonicalTable(value))
    return true
  }
  if (value instanceof PathKey) {
    if (encodePathContent(encoder, value.kind, value.path)) return true
    encoder.u8(TAG_PATH)
    encoder.u8(PATH_KIND_CODE[value.kind])
    encoder.string(value.path)
    return true
  }
  if (value instanceof URL) {
    if (value.protocol === "file:" && encoder.paths !== undefined) {
      const absolute = fileUrlPath(value)
      if (absolute !== undefined && encodePathContent(encoder, "auto", absolute)) return true
    }
    encoder.u8(TAG_URL)
    encoder.string(value.href)
    return true
  }
  return false
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

const shared = new Encoder(INITIAL_CAPACITY)
let sharedBusy = false

/**
 * Encodes `params` into a reused buffer and passes a view of the bytes to `f`; the view is valid
 * only during `f`. This is the hot path of every `get`: no per-call buffer, no copy.
 * Throws `KeyError` (tagged with `method`) for unhashable parameters.
 *
 * @since 0.1.0
 * @category encoding
 */
export const withEncodedParams = <A>(
  params: KeyParams,
  f: (bytes: Uint8Array) => A,
  method = "Hasher.key",
  paths?: PathContext
): A => {
  if (typeof params !== "object" || params === null || Array.isArray(params) || !isPlainObject(params)) {
    throw new KeyError({
      reason: "InvalidKey",
      method,
      path: "params",
      description: `key parameters must be a plain object of named values, not ${describeKind(params)}`
    })
  }
  // Re-entrant use (a toCacheKey() that computes another key) gets its own encoder.
  const encoder = sharedBusy ? new Encoder(256) : shared
  const owner = encoder === shared
  if (owner) sharedBusy = true
  encoder.pos = 0
  encoder.paths = paths
  try {
    encoder.u8(ENCODING_VERSION)
    encoder.record(params as Record<string, unknown>)
    return f(encoder.buf.subarray(0, encoder.pos))
  } catch (error) {
    encoder.ancestors.reset()
    throw toKeyError(error, method)
  } finally {
    encoder.paths = undefined
    encoder.shrink()
    if (owner) sharedBusy = false
  }
}

const copyBytes = (bytes: Uint8Array): Uint8Array => bytes.slice()

/**
 * The canonical encoding of `params` as a fresh byte array (tests, debugging). Throws `KeyError`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeParams = (params: KeyParams, method = "Hasher.key"): Uint8Array =>
  withEncodedParams(params, copyBytes, method)

/**
 * A short human name for the kind of a value, for error messages.
 *
 * @since 0.1.0
 * @category errors
 */
export const describeKind = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (typeof value === "object") return `a ${constructorName(value) ?? "object with a custom prototype"}`
  return `a ${typeof value}`
}
