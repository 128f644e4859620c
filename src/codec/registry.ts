/**
 * The default `Codec`: an ordered registry of format handlers (first guard wins, the generic `v8`
 * handler last), a compression policy per handler kind, and the header from `header.ts`.
 *
 * Formats shipped here, in the order they are tried:
 * - `buffer`: a Node `Buffer`, stored raw, read back as a `Buffer`.
 * - `bytes`: any other `Uint8Array`, stored raw, read back as a plain `Uint8Array`.
 *   Both keep their type because a `Buffer` that came back as a `Uint8Array` would still type-check
 *   and then print `1,2,3` from `toString()`; `v8` keeps Buffers nested in objects as Buffers too.
 * - `json`: plain JSON data that JSON reproduces exactly — a speed choice, 3–4x faster than `v8`.
 * - `v8`: everything else, through `v8.serialize` (structured clone: Map, Set, Date, BigInt, RegExp,
 *   Error, typed arrays, cycles; no code runs on read). Values structured clone would silently
 *   damage — class instances (prototype and private fields dropped), functions, symbols — are
 *   refused with a `CodecError` "Unserializable" naming the path; use a `schema` or a handler.
 *   A null-prototype object is accepted and comes back as a plain object, as structured clone does.
 *
 * Decoding does not copy: a decoded `Uint8Array` (and typed arrays inside a `v8` value) may share
 * memory with the bytes passed to `decode`, so pass bytes nobody else will mutate — a fresh read,
 * or a copy out of an in-memory store.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as V8 from "node:v8"
import { NotSync } from "../shared/sync.js"
import * as Compression from "./compression.js"
import * as ArrowFormat from "./formats/arrow.js"
import * as NdArray from "./formats/ndarray.js"
import * as ParquetFormat from "./formats/parquet.js"
import * as PolarsFormat from "./formats/polars.js"
import * as Header from "./header.js"
import { checkedHandler, Codec, CodecError, make as makeCodec, makeHandler } from "./service.js"
import type {
  CompressionCodec,
  CompressionSettings,
  DecodeOptions,
  Encoded,
  EncodeOptions,
  FormatHandler,
  Placed,
  Placement
} from "./service.js"

/**
 * Compression settings; unset fields fall back to the enclosing settings, then to the defaults
 * (lz4, not below 256 B, only when it saves at least 3%).
 *
 * @since 0.1.0
 * @category models
 */
export interface CompressionOptions {
  readonly codec?: CompressionCodec | undefined
  readonly level?: number | undefined
  /** Payloads smaller than this many bytes are stored raw. */
  readonly minSize?: number | undefined
  /** Stored raw unless compression saves at least this fraction (0.03 = 3%). */
  readonly minSavings?: number | undefined
  /** Byte-shuffle numeric arrays before compressing (Blosc's filter). Default true. */
  readonly shuffle?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Checked before the defaults, in order; the first whose guard accepts a value encodes it. */
  readonly handlers?: ReadonlyArray<FormatHandler> | undefined
  readonly compression?:
    | CompressionOptions & {
      /** Per handler `kind` ("bytes", "array", "table", "object"), over the settings above. */
      readonly byKind?: Readonly<Record<string, CompressionOptions>> | undefined
    }
    | undefined
  /**
   * How tables (Arrow, Polars) are written: `ipc` (default) or `parquet`. Both formats are always
   * read, whatever this says.
   */
  readonly tables?: "ipc" | "parquet" | undefined
}

// ---------------------------------------------------------------------------------------------
// handlers
// ---------------------------------------------------------------------------------------------

/**
 * Node `Buffer`s, stored raw and decoded as a `Buffer` viewing the payload.
 *
 * @since 0.1.0
 * @category handlers
 */
export const bufferHandler: FormatHandler<Buffer> = makeHandler({
  format: "buffer",
  version: 1,
  kind: "bytes",
  guard: (value): value is Buffer => Buffer.isBuffer(value),
  encode: (value) => Effect.succeed(value),
  decode: (payload) => Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
})

/**
 * `Uint8Array`s, stored raw and decoded as a plain `Uint8Array` viewing the payload.
 *
 * @since 0.1.0
 * @category handlers
 */
export const bytesHandler: FormatHandler<Uint8Array> = makeHandler({
  format: "bytes",
  version: 1,
  kind: "bytes",
  guard: (value): value is Uint8Array => value instanceof Uint8Array,
  encode: (value) => Effect.succeed(value),
  decode: (payload) => new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
})

/**
 * Any structured-cloneable value, through `v8.serialize`.
 *
 * @since 0.1.0
 * @category handlers
 */
export const v8Handler: FormatHandler<unknown> = makeHandler({
  format: "v8",
  version: 1,
  kind: "object",
  guard: (_value): _value is unknown => true,
  encode: (value) => Effect.suspend(() => serialize(value)),
  decode: (payload) => V8.deserialize(payload),
  corrupt: "v8 payload does not deserialize"
})

/**
 * Plain JSON data (objects, arrays, strings, finite numbers, booleans, null), as UTF-8 JSON text.
 * Not a different data model — only values JSON reproduces exactly are accepted, everything else
 * goes to `v8` — but 3–4x faster than `v8.serialize`/`deserialize` for the typical small record
 * (measured: 0.9 vs 3.0 µs to encode, 0.8 vs 2.7 µs to decode a 150 B object).
 *
 * @since 0.1.0
 * @category handlers
 */
export const jsonHandler: FormatHandler<unknown> = makeHandler({
  format: "json",
  version: 1,
  kind: "object",
  guard: (value): value is unknown => isJson(value, 0),
  encode: (value) =>
    Effect.try({
      try: () => Buffer.from(JSON.stringify(value), "utf8"),
      // A value whose JSON text is beyond V8's longest string (~512 MiB) throws a RangeError.
      catch: (cause) =>
        new CodecError({
          reason: "Unserializable",
          method: "Codec.encode",
          format: "json",
          description: `the value could not be written as JSON: ${(cause as Error)?.message ?? String(cause)}`,
          cause
        })
    }),
  decode: (payload) => JSON.parse(utf8.decode(payload)),
  corrupt: "json payload does not parse"
})

/**
 * The built-in handlers in the order they are tried. The Parquet handlers (Arrow, Polars) follow
 * the IPC ones, which take every table first: they are there to read Parquet values, and move
 * ahead with `tables: "parquet"`.
 *
 * @since 0.1.0
 * @category handlers
 */
export const defaultHandlers: ReadonlyArray<FormatHandler> = [
  bufferHandler,
  bytesHandler,
  NdArray.handler,
  ArrowFormat.handler,
  ParquetFormat.handler,
  PolarsFormat.handler,
  PolarsFormat.parquetHandler,
  jsonHandler,
  v8Handler
]

/**
 * The built-in handlers for a `tables` setting.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handlersFor = (tables: "ipc" | "parquet"): ReadonlyArray<FormatHandler> =>
  tables === "ipc"
    ? defaultHandlers
    : [
      bufferHandler,
      bytesHandler,
      NdArray.handler,
      ParquetFormat.handler,
      ArrowFormat.handler,
      PolarsFormat.parquetHandler,
      PolarsFormat.handler,
      jsonHandler,
      v8Handler
    ]

// Deeper values (or cycles, which never end) are left to v8, which tracks identities.
const MAX_JSON_DEPTH = 64

/**
 * Whether JSON.parse(JSON.stringify(value)) reproduces `value` exactly: no undefined, holes, -0,
 * NaN/Infinity, non-plain objects (JSON.parse gives Object.prototype) or functions.
 */
const isJson = (value: unknown, depth: number): boolean => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0)
    case "object": {
      if (value === null) return true
      if (depth === MAX_JSON_DEPTH) return false
      const proto = Object.getPrototypeOf(value)
      if (proto === Array.prototype) {
        const array = value as Array<unknown>
        // A hole reads as undefined, so it fails here like an undefined element.
        for (let i = 0; i < array.length; i++) {
          if (!isJson(array[i], depth + 1)) return false
        }
        return true
      }
      if (proto !== Object.prototype) return false
      for (const key in value) {
        if (!isJson((value as Record<string, unknown>)[key], depth + 1)) return false
      }
      return true
    }
    default:
      return false
  }
}

const utf8 = new TextDecoder()

const serialize = (value: unknown): Effect.Effect<Uint8Array, CodecError> => {
  try {
    const problem = findUncloneable(value)
    if (problem !== undefined) {
      return Effect.fail(
        new CodecError({
          reason: "Unserializable",
          method: "Codec.encode",
          format: "v8",
          description: `value${problem}`
        })
      )
    }
    return Effect.succeed(V8.serialize(value))
  } catch (cause) {
    // v8's refusals (WeakMap, Promise, Proxy…) and getters that throw while being read.
    return Effect.fail(
      new CodecError({
        reason: "Unserializable",
        method: "Codec.encode",
        format: "v8",
        description: `value cannot be stored by structured clone: ${(cause as Error)?.message ?? String(cause)}`,
        cause
      })
    )
  }
}

// ---------------------------------------------------------------------------------------------
// what structured clone would silently damage
// ---------------------------------------------------------------------------------------------

// Objects whose prototype structured clone reproduces on read.
const cloneablePrototypes = new Set<object>([
  Date.prototype,
  RegExp.prototype,
  ArrayBuffer.prototype,
  Boolean.prototype,
  Number.prototype,
  String.prototype,
  BigInt.prototype,
  Error.prototype,
  EvalError.prototype,
  RangeError.prototype,
  ReferenceError.prototype,
  SyntaxError.prototype,
  TypeError.prototype,
  URIError.prototype
])

const identifier = /^[A-Za-z_$][\w$]*$/
const keyPath = (key: string) => identifier.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`

/**
 * The path and reason of the first part of `value` that structured clone would refuse or damage,
 * e.g. `.model.fit: is a function`; `undefined` when the value is fine. Returns the path inside out
 * (parents prefix their key on the way up) so the success path builds no strings.
 */
const findUncloneable = (value: unknown): string | undefined => {
  if (typeof value !== "object" || value === null) return leafProblem(value)
  try {
    return walk(value, new Set())
  } catch (error) {
    // Too deep to walk here: let v8.serialize (with its own limits) have the last word.
    if (error instanceof RangeError) return undefined
    throw error
  }
}

const leafProblem = (value: unknown): string | undefined => {
  switch (typeof value) {
    case "function":
      return `: is a function (${value.name || "anonymous"}); functions cannot be stored`
    case "symbol":
      return `: is a symbol (${String(value)}); symbols cannot be stored`
    default:
      return undefined
  }
}

const walk = (value: unknown, seen: Set<object>): string | undefined => {
  if (typeof value !== "object" || value === null) return leafProblem(value)
  if (seen.has(value)) return undefined
  seen.add(value)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = walk(value[i], seen)
      if (problem !== undefined) return `[${i}]${problem}`
    }
    return undefined
  }
  if (ArrayBuffer.isView(value)) return undefined
  const proto = Object.getPrototypeOf(value)
  // A null-prototype object, or Object.prototype of this or another realm.
  if (proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null) {
    for (const key in value) {
      const problem = walk((value as Record<string, unknown>)[key], seen)
      if (problem !== undefined) return `${keyPath(key)}${problem}`
    }
    return undefined
  }
  if (proto === Map.prototype) {
    for (const [key, entry] of value as Map<unknown, unknown>) {
      const problem = walk(key, seen) ?? walk(entry, seen)
      if (problem !== undefined) return `.get(${describeKey(key)})${problem}`
    }
    return undefined
  }
  if (proto === Set.prototype) {
    for (const entry of value as Set<unknown>) {
      const problem = walk(entry, seen)
      if (problem !== undefined) return `.has(${describeKey(entry)})${problem}`
    }
    return undefined
  }
  if (cloneablePrototypes.has(proto)) return undefined
  const name = typeof proto.constructor === "function" && proto.constructor.name
    ? proto.constructor.name
    : "(anonymous)"
  return `: is an instance of class ${name}; structured clone would drop its prototype and private fields ` +
    `(store it with a schema, or register a handler for it)`
}

const describeKey = (key: unknown): string =>
  typeof key === "string" ? JSON.stringify(key) : typeof key === "object" && key !== null ? "<object>" : String(key)

// ---------------------------------------------------------------------------------------------
// the registry
// ---------------------------------------------------------------------------------------------

/** One handler with everything its hot path needs precomputed. */
interface Entry {
  readonly handler: FormatHandler
  readonly formatBytes: Uint8Array
  readonly encode: (value: unknown) => Effect.Effect<Encoded, CodecError>
  /** `encode` as a plain function (it throws on failure), for the built-in synchronous formats. */
  readonly encodeSync?: ((value: unknown) => Encoded) | undefined
}

/**
 * The payloads of the built-in handlers whose encoding needs no effects, as plain functions that
 * throw where `encode` fails (the effectful path then runs and reports why). Only these: a user's
 * handler or a table format goes through `encode`.
 */
const syncPayloads = new Map<FormatHandler, (value: unknown) => Uint8Array>([
  [bufferHandler, (value) => value as Buffer],
  [bytesHandler, (value) => value as Uint8Array],
  [jsonHandler, (value) => Buffer.from(JSON.stringify(value), "utf8")],
  [v8Handler, (value) => {
    if (findUncloneable(value) !== undefined) throw new TypeError("not cloneable")
    return V8.serialize(value)
  }]
])

const resolvePolicy = (
  options: Options["compression"],
  handler: FormatHandler
): Compression.CompressionPolicy | CodecError => {
  const own = options?.byKind?.[handler.kind]
  const codec = own?.codec ?? options?.codec ?? Compression.defaults.codec
  const spec = Compression.byName[codec]
  // A self-framing handler that applies the codec itself does not need this runtime to have it.
  const ownCodec = handler.encodeFramed !== undefined && handler.codecs?.includes(codec) === true
  if (spec === undefined || (!spec.available && !ownCodec)) {
    return new CodecError({
      reason: "CompressionFailed",
      method: "Codec.encode",
      description: spec === undefined
        ? `unknown compression codec ${JSON.stringify(codec)}`
        : `${codec} is not available in this runtime (Node ${process.versions.node}); choose lz4, gzip, brotli or none`
    })
  }
  return {
    spec,
    level: own?.level ?? options?.level ?? spec.defaultLevel,
    minSize: own?.minSize ?? options?.minSize ?? Compression.defaults.minSize,
    minSavings: own?.minSavings ?? options?.minSavings ?? Compression.defaults.minSavings
  }
}

const settingsOf = (
  policy: Compression.CompressionPolicy,
  options: Options["compression"],
  kind: string
): CompressionSettings => ({
  codec: policy.spec.codec,
  level: policy.level,
  shuffle: options?.byKind?.[kind]?.shuffle ?? options?.shuffle ?? true,
  minSize: policy.minSize,
  minSavings: policy.minSavings
})

const makeEntry = (handler: FormatHandler, compression: Options["compression"]): Entry => {
  const prefix = Header.template(handler.format, handler.version)
  const formatBytes = prefix.subarray(5, 5 + handler.format.length)
  const policy = resolvePolicy(compression, handler)
  if (handler.encodeFramed !== undefined && !(policy instanceof CodecError)) {
    return {
      handler,
      formatBytes,
      encode: framedEncoder(handler, handler.encodeFramed, prefix, settingsOf(policy, compression, handler.kind))
    }
  }
  const finish = policy instanceof CodecError
    ? () => Effect.fail(policy)
    : (raw: Uint8Array): Effect.Effect<Encoded, CodecError> => {
      try {
        const { payload, spec } = Compression.compress(raw, policy)
        return Effect.succeed({
          format: handler.format,
          formatVersion: handler.version,
          codec: spec.codec,
          bytes: Header.frame(prefix, spec.id, raw.byteLength, payload),
          rawBytes: raw.byteLength
        })
      } catch (cause) {
        return Effect.fail(
          new CodecError({
            reason: "CompressionFailed",
            method: "Codec.encode",
            format: handler.format,
            description: `${policy.spec.codec} failed: ${(cause as Error)?.message ?? String(cause)}`,
            cause
          })
        )
      }
    }
  const payloadSync = policy instanceof CodecError ? undefined : syncPayloads.get(handler)
  return {
    handler,
    formatBytes,
    encode: (value) => Effect.flatMap(handler.encode(value), finish),
    encodeSync: payloadSync === undefined || policy instanceof CodecError ? undefined : (value) => {
      const raw = payloadSync(value)
      const { payload, spec } = Compression.compress(raw, policy)
      return {
        format: handler.format,
        formatVersion: handler.version,
        codec: spec.codec,
        bytes: Header.frame(prefix, spec.id, raw.byteLength, payload),
        rawBytes: raw.byteLength
      }
    }
  }
}

/** A handler that compresses and frames its own payload: the codec only writes the header. */
const framedEncoder = (
  handler: FormatHandler,
  encodeFramed: NonNullable<FormatHandler["encodeFramed"]>,
  prefix: Uint8Array,
  settings: CompressionSettings
) => {
  const headerRoom = Header.framedHeaderSize(prefix)
  // Headers of the older versions a value may ask for (`FramedPayload.formatVersion`), made once.
  // The payload sits at `headerRoom`, so an older version is written only where its header is as
  // long as the current one's (versions below 128 all are, in one varint byte).
  const prefixes = new Map<number, Uint8Array>([[handler.version, prefix]])
  const prefixOf = (asked: number | undefined): readonly [number, Uint8Array] => {
    if (asked === undefined || asked === handler.version || !Number.isSafeInteger(asked) || asked < 0) {
      return [handler.version, prefix]
    }
    if (asked > handler.version) return [handler.version, prefix]
    let found = prefixes.get(asked)
    if (found === undefined) {
      found = Header.template(handler.format, asked)
      prefixes.set(asked, found)
    }
    return found.length === prefix.length ? [asked, found] : [handler.version, prefix]
  }
  return (value: unknown): Effect.Effect<Encoded, CodecError> =>
    Effect.map(encodeFramed(value, settings, headerRoom), (framed) => {
      const [version, header] = prefixOf(framed.formatVersion)
      Header.writeFramed(framed.bytes, header, Compression.byName[framed.codec].id, framed.rawBytes)
      return {
        format: handler.format,
        formatVersion: version,
        codec: framed.codec,
        bytes: framed.bytes,
        rawBytes: framed.rawBytes,
        fill: framed.fill
      }
    })
}

/** A decoded value validated by the schema of `options`, when there is one. */
const throughSchema = (
  decoded: Effect.Effect<unknown, CodecError>,
  options: DecodeOptions | undefined
): Effect.Effect<unknown, CodecError> => {
  const schema = options?.schema
  if (schema === undefined) return decoded
  return Effect.flatMap(decoded, (value) =>
    Effect.suspend(() => Schema.decodeUnknown(schema)(value)).pipe(
      Effect.mapError(schemaMismatch("Codec.decode")),
      Effect.catchAllDefect((cause) => Effect.fail(unreadable("Codec.decode", cause)))
    ))
}

const schemaMismatch = (method: string) => (error: ParseResult.ParseError) =>
  new CodecError({ reason: "SchemaMismatch", method, description: error.message, cause: error })

const unreadable = (method: string, cause: unknown) =>
  new CodecError({
    reason: "SchemaMismatch",
    method,
    description: `the schema could not read the value: ${cause instanceof Error ? cause.message : "it threw"}`,
    cause
  })

/** `encoded` with its bytes complete: a deferred copy (`Encoded.fill`) run now. */
const complete = (encoded: Encoded): Encoded => {
  if (encoded.fill === undefined) return encoded
  encoded.fill(ignoreFilled)
  return {
    format: encoded.format,
    formatVersion: encoded.formatVersion,
    codec: encoded.codec,
    bytes: encoded.bytes,
    rawBytes: encoded.rawBytes
  }
}

const ignoreFilled = () => {}

/**
 * Builds the codec. Throws when a handler has an invalid format id (printable ASCII, 1–255 chars)
 * or version — a programming error, surfaced as a defect by `layer`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Codec.Service => {
  const entries = [...(options?.handlers ?? []).map(checkedHandler), ...handlersFor(options?.tables ?? "ipc")].map((
    handler
  ) => makeEntry(handler, options?.compression))
  // Schema-encoded values are stored by the generic handler (whichever "v8" comes first).
  const generic = entries.find((entry) => entry.handler.format === v8Handler.format)!

  const encodeWith = (entry: Entry, value: unknown) => entry.encode(value)

  const encodeValue = (value: unknown): Effect.Effect<Encoded, CodecError> => {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!
      let accepted: boolean
      try {
        accepted = entry.handler.guard(value)
      } catch (cause) {
        // A guard reads the value; a getter or Proxy trap that throws makes it unstorable.
        return Effect.fail(
          new CodecError({
            reason: "Unserializable",
            method: "Codec.encode",
            format: entry.handler.format,
            description: `reading the value failed: ${(cause as Error)?.message ?? String(cause)}`,
            cause
          })
        )
      }
      if (accepted) return encodeWith(entry, value)
    }
    // Unreachable while v8Handler (which accepts anything) is registered.
    return Effect.fail(
      new CodecError({ reason: "Unserializable", method: "Codec.encode", description: "no handler accepts this value" })
    )
  }

  /** The registered handler of the format stored bytes name in their header. */
  const entryOf = (bytes: Uint8Array, header: Header.Header): Entry | undefined => {
    for (let i = 0; i < entries.length; i++) {
      if (Header.formatEquals(bytes, header, entries[i]!.formatBytes)) return entries[i]
    }
    return undefined
  }

  /** The handler and the payload to give it (decompressed unless self-framed), or why not. */
  const unpack = (
    bytes: Uint8Array
  ): { readonly entry: Entry; readonly payload: Uint8Array; readonly version: number } | CodecError => {
    const header = Header.parse(bytes, "Codec.decode")
    if (header instanceof CodecError) return header
    const entry = entryOf(bytes, header)
    if (entry === undefined) {
      const format = Header.formatOf(bytes, header)
      return new CodecError({
        reason: "UnknownFormat",
        method: "Codec.decode",
        format,
        description: `no handler for format "${format}"`
      })
    }
    if (header.formatVersion > entry.handler.version) {
      return new CodecError({
        reason: "UnknownFormat",
        method: "Codec.decode",
        format: entry.handler.format,
        description:
          `format version ${header.formatVersion} is newer than this release reads (${entry.handler.version})`
      })
    }
    const stored = bytes.subarray(header.payloadOffset)
    // Self-framed payloads carry their own per-block compression.
    if (entry.handler.encodeFramed !== undefined) return { entry, payload: stored, version: header.formatVersion }
    const codec = header.codec
    let payload: Uint8Array
    if (codec.id === 0) {
      payload = stored
    } else if (!codec.available) {
      return new CodecError({
        reason: "UnknownFormat",
        method: "Codec.decode",
        format: entry.handler.format,
        description: `stored with ${codec.codec} compression, which this runtime cannot decompress`
      })
    } else {
      try {
        payload = codec.decompress(stored, header.rawLength)
      } catch (cause) {
        return new CodecError({
          reason: "Corrupt",
          method: "Codec.decode",
          format: entry.handler.format,
          description: `${codec.codec} payload does not decompress: ${(cause as Error)?.message ?? String(cause)}`,
          cause
        })
      }
    }
    if (payload.byteLength !== header.rawLength) {
      return new CodecError({
        reason: "Corrupt",
        method: "Codec.decode",
        format: entry.handler.format,
        description: `payload is ${payload.byteLength} bytes, header states ${header.rawLength}`
      })
    }
    return { entry, payload, version: header.formatVersion }
  }

  const decodeBytes = (bytes: Uint8Array): Effect.Effect<unknown, CodecError> => {
    const unpacked = unpack(bytes)
    return unpacked instanceof CodecError
      ? Effect.fail(unpacked)
      : unpacked.entry.handler.decode(unpacked.payload, unpacked.version)
  }

  /**
   * `Codec.Service.place`: the views of bytes whose header parses and names a registered format
   * that frames and places its own payload, at a version it reads. Anything else — bytes too short
   * to tell, a handler that declines or throws, views that do not add up — is read whole, where
   * `decode` judges it.
   */
  const place = (head: Uint8Array, size: number): Placed | undefined => {
    const header = Header.parse(head, "Codec.decode")
    if (header instanceof CodecError) return undefined
    const entry = entryOf(head, header)
    const handler = entry?.handler
    if (
      handler?.place === undefined || handler.encodeFramed === undefined || header.formatVersion > handler.version ||
      size < header.payloadOffset
    ) return undefined
    let placement: Placement<unknown> | undefined
    try {
      placement = handler.place(
        head.subarray(header.payloadOffset),
        size - header.payloadOffset,
        header.formatVersion,
        header.codec.codec
      )
    } catch {
      return undefined
    }
    if (placement === undefined) return undefined
    const views = [new Uint8Array(header.payloadOffset), ...placement.views]
    let total = 0
    for (const view of views) total += view.byteLength
    if (total !== size) return undefined
    const { finish } = placement
    const decoded = Effect.try({
      try: finish,
      catch: (cause) =>
        new CodecError({
          reason: "Corrupt",
          method: "Codec.decode",
          format: handler.format,
          description: `${handler.format} payload does not decode: ${(cause as Error)?.message ?? String(cause)}`,
          cause
        })
    })
    return {
      views,
      ready: placement.ready,
      touched: placement.touched,
      decode: (options) => throughSchema(decoded, options)
    }
  }

  const unsafeDecode = (bytes: Uint8Array): unknown => {
    try {
      const unpacked = unpack(bytes)
      if (unpacked instanceof CodecError) return NotSync
      const decodeSync = unpacked.entry.handler.decodeSync
      return decodeSync === undefined ? NotSync : decodeSync(unpacked.payload, unpacked.version)
    } catch {
      return NotSync
    }
  }

  const unsafeEncode = (value: unknown): Encoded | NotSync => {
    try {
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]!
        if (entry.handler.guard(value)) return entry.encodeSync === undefined ? NotSync : entry.encodeSync(value)
      }
      return NotSync
    } catch {
      // A guard, a payload or the compression threw: `encode` reports it in full.
      return NotSync
    }
  }

  return makeCodec({
    unsafeEncode,
    encode: (value: unknown, encodeOptions?: EncodeOptions) => {
      const schema = encodeOptions?.schema
      if (schema === undefined) {
        return encodeOptions?.deferCopy === true
          ? Effect.suspend(() => encodeValue(value))
          : Effect.map(Effect.suspend(() => encodeValue(value)), complete)
      }
      return Effect.suspend(() => Schema.encodeUnknown(schema)(value)).pipe(
        Effect.mapError(schemaMismatch("Codec.encode")),
        // A getter or Proxy that throws while the schema reads the value is bad input too.
        Effect.catchAllDefect((cause) => Effect.fail(unreadable("Codec.encode", cause))),
        Effect.flatMap((encoded) => encodeWith(generic, encoded))
      )
    },
    decode: (bytes: Uint8Array, decodeOptions?: DecodeOptions) =>
      throughSchema(Effect.suspend(() => decodeBytes(bytes)), decodeOptions),
    place,
    unsafeDecode,
    retainsBytes: (bytes: Uint8Array) => {
      const header = Header.parse(bytes, "Codec.decode")
      if (header instanceof CodecError) return true
      const entry = entryOf(bytes, header)
      if (entry === undefined) return true
      // A self-framed handler reads the stored bytes themselves; any other decodes a payload that
      // was decompressed into new memory unless it was stored raw.
      return entry.handler.encodeFramed !== undefined ? entry.handler.retainsPayload !== false : header.codec.id === 0
    },
    inspect: (bytes: Uint8Array) =>
      Effect.suspend(() => {
        const header = Header.parse(bytes, "Codec.inspect")
        if (header instanceof CodecError) return Effect.fail(header)
        return Effect.succeed({
          format: Header.formatOf(bytes, header),
          formatVersion: header.formatVersion,
          codec: header.codec.codec
        })
      })
  })
}

/**
 * The default codec as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Codec> => Layer.sync(Codec, () => make(options))
