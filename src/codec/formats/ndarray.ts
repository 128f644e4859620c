/**
 * Numeric arrays, stored as NumPy/Blosc store them: a small header (dtype, shape, byte order) and
 * the element bytes byte-shuffled and compressed block by block (`../blocks.ts`). Round trips
 * are bit-exact — NaN payloads, -0, every bit of a BigInt64 — because bytes are copied, never
 * converted.
 *
 * Three shapes of value share the format "ndarray":
 * - a typed array (`Int8Array` … `Float64Array`, `BigInt64Array`, `BigUint64Array`,
 *   `Uint8ClampedArray`; a plain `Uint8Array` is taken earlier by the `bytes` format);
 * - an nd-array `{ data, shape, dtype }` with a NumPy dtype name (`int8` … `uint64`, `float32`,
 *   `float64`) matching `data`'s type and `shape` whose product is `data.length`;
 * - a plain object whose values are all typed arrays or nd-arrays (≈ NumPy's `.npz`), stored
 *   column by column so each column is shuffled with its own element size.
 *
 * ```
 * payload   u8 layout (0 one array, 1 columns) · u8 byte order (0 little-endian)
 *           one array: array record
 *           columns:   u32 count · per column: u32 name length · UTF-8 name · array record
 * array     u8 dtype code · u8 is nd-array · [u32 ndim · ndim × f64 extent] · block stream
 * ```
 *
 * Format version 2 stores a shuffled LZ4 block whose byte planes do not all compress plane by plane
 * (`../blocks.ts`, codec id 128): a float64 signal's noisy low planes raw, its top planes as LZ4.
 * Version 1 never wrote such a block and reads with the same code. A value stored without one is
 * written as version 1, so a release that reads only version 1 reads it; one with a planes block
 * is version 2, which such a release sees as a newer format (a miss, the entry kept).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as BufferPool from "../../shared/bufferPool.js"
import * as Prefault from "../../shared/prefault.js"
import * as Blocks from "../blocks.js"
import * as Compression from "../compression.js"
import { CodecError, makeHandler } from "../service.js"
import type { CompressionCodec, CompressionSettings, FormatHandler, FramedPayload, Placement } from "../service.js"

/**
 * A typed array of any element type this format stores.
 *
 * @since 0.1.0
 * @category models
 */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array

/**
 * NumPy dtype names.
 *
 * @since 0.1.0
 * @category models
 */
export type DType =
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "float32"
  | "float64"

/**
 * An n-dimensional array in row-major order.
 *
 * @since 0.1.0
 * @category models
 */
export interface NdArray {
  readonly data: TypedArray
  readonly shape: ReadonlyArray<number>
  readonly dtype: DType
}

interface Kind {
  readonly code: number
  readonly dtype: DType | undefined
  readonly tag: string
  readonly make: (buffer: ArrayBuffer) => TypedArray
  readonly proto: object
  readonly width: number
}

// Codes are persisted: never reuse or renumber one.
const kinds: ReadonlyArray<Kind> = [
  { code: 1, dtype: "int8", tag: "Int8Array", make: (b) => new Int8Array(b), proto: Int8Array.prototype, width: 1 },
  { code: 2, dtype: "uint8", tag: "Uint8Array", make: (b) => new Uint8Array(b), proto: Uint8Array.prototype, width: 1 },
  {
    code: 3,
    dtype: undefined,
    tag: "Uint8ClampedArray",
    make: (b) => new Uint8ClampedArray(b),
    proto: Uint8ClampedArray.prototype,
    width: 1
  },
  { code: 4, dtype: "int16", tag: "Int16Array", make: (b) => new Int16Array(b), proto: Int16Array.prototype, width: 2 },
  {
    code: 5,
    dtype: "uint16",
    tag: "Uint16Array",
    make: (b) => new Uint16Array(b),
    proto: Uint16Array.prototype,
    width: 2
  },
  { code: 6, dtype: "int32", tag: "Int32Array", make: (b) => new Int32Array(b), proto: Int32Array.prototype, width: 4 },
  {
    code: 7,
    dtype: "uint32",
    tag: "Uint32Array",
    make: (b) => new Uint32Array(b),
    proto: Uint32Array.prototype,
    width: 4
  },
  {
    code: 8,
    dtype: "float32",
    tag: "Float32Array",
    make: (b) => new Float32Array(b),
    proto: Float32Array.prototype,
    width: 4
  },
  {
    code: 9,
    dtype: "float64",
    tag: "Float64Array",
    make: (b) => new Float64Array(b),
    proto: Float64Array.prototype,
    width: 8
  },
  {
    code: 10,
    dtype: "int64",
    tag: "BigInt64Array",
    make: (b) => new BigInt64Array(b),
    proto: BigInt64Array.prototype,
    width: 8
  },
  {
    code: 11,
    dtype: "uint64",
    tag: "BigUint64Array",
    make: (b) => new BigUint64Array(b),
    proto: BigUint64Array.prototype,
    width: 8
  }
]

const byCode = new Map(kinds.map((kind) => [kind.code, kind]))
const byDtype = new Map(kinds.filter((kind) => kind.dtype !== undefined).map((kind) => [kind.dtype!, kind]))
const byProto = new Map<object, Kind>(kinds.map((kind) => [kind.proto, kind]))

// Exact prototypes only: a subclass (Buffer, a user's class) would come back as its base class.
const kindOf = (value: unknown): Kind | undefined =>
  typeof value === "object" && value !== null && ArrayBuffer.isView(value)
    ? byProto.get(Object.getPrototypeOf(value))
    : undefined

/**
 * Whether `value` is a typed array this format stores.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTypedArray = (value: unknown): value is TypedArray => kindOf(value) !== undefined

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype

/**
 * Whether `value` is an nd-array `{ data, shape, dtype }` whose parts agree.
 *
 * @since 0.1.0
 * @category guards
 */
export const isNdArray = (value: unknown): value is NdArray => {
  if (!isPlainObject(value)) return false
  const keys = Object.keys(value)
  if (keys.length !== 3 || !("data" in value && "shape" in value && "dtype" in value)) return false
  const kind = byDtype.get(value.dtype as DType)
  if (kind === undefined || kindOf(value.data) !== kind) return false
  const shape = value.shape
  if (!Array.isArray(shape)) return false
  let count = 1
  for (const extent of shape) {
    if (!Number.isSafeInteger(extent) || extent < 0) return false
    count *= extent
  }
  return count === (value.data as TypedArray).length
}

/**
 * Whether `value` is a plain object whose values are all typed arrays or nd-arrays.
 *
 * @since 0.1.0
 * @category guards
 */
export const isColumns = (value: unknown): value is Record<string, TypedArray | NdArray> => {
  if (!isPlainObject(value)) return false
  let any = false
  for (const key in value) {
    const column = value[key]
    // Cheapest test first: most plain objects fail on their first value.
    if (kindOf(column) === undefined && !isNdArray(column)) return false
    any = true
  }
  return any
}

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

interface Part {
  readonly kind: Kind
  readonly shape: ReadonlyArray<number> | undefined
  readonly bytes: Uint8Array
}

const partOf = (value: TypedArray | NdArray): Part => {
  const nd = isNdArray(value)
  const data = nd ? value.data : value as TypedArray
  return {
    kind: kindOf(data)!,
    shape: nd ? value.shape : undefined,
    bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  }
}

const partBound = (part: Part) =>
  2 + (part.shape === undefined ? 0 : 4 + 8 * part.shape.length) + Blocks.bound(part.bytes.byteLength)

const writePartHeader = (out: Blocks.Writer, part: Part): void => {
  out.u8(part.kind.code)
  out.u8(part.shape === undefined ? 0 : 1)
  if (part.shape !== undefined) {
    out.u32(part.shape.length)
    for (const extent of part.shape) out.f64(extent)
  }
}

const writePart = (out: Blocks.Writer, part: Part, policy: Blocks.BlockPolicy): boolean => {
  writePartHeader(out, part)
  return Blocks.write(out, part.bytes, part.kind.width, policy)
}

type Value = TypedArray | NdArray | Record<string, TypedArray | NdArray>

const uncompressed: Blocks.BlockPolicy = {
  spec: Compression.byName.none,
  level: undefined,
  shuffle: false,
  minSize: 0,
  minSavings: 0
}

const encodeWith = (value: Value, policy: Blocks.BlockPolicy, headerRoom: number): FramedPayload => {
  const { out, parts, rawBytes } = prepare(value, headerRoom)
  let compressed = false
  for (const [name, part] of parts) {
    if (name !== undefined) {
      out.u32(name.byteLength)
      out.raw(name)
    }
    if (writePart(out, part, policy)) compressed = true
  }
  return framed(out, compressed, policy, rawBytes)
}

/**
 * `encodeWith` for one large array: its blocks compressed on the threadpool (`Blocks.writeParallel`,
 * which copies the array before it first waits), or all on this thread when they are stored plane
 * by plane. Columns and small arrays take `encodeWith`.
 */
const encodeParallel = async (value: TypedArray | NdArray, policy: Blocks.BlockPolicy, headerRoom: number) => {
  const { out, parts, rawBytes } = prepare(value, headerRoom)
  const part = parts[0]![1]
  writePartHeader(out, part)
  const compressed = await Blocks.writeParallel(out, part.bytes, part.kind.width, policy)
  return framed(out, compressed, policy, rawBytes)
}

/** Arrays at least this large stored as they are (`none`) are copied by `FramedPayload.fill`. */
const DEFERRED_COPY = 8 << 20

const copiesLater = (value: Value): value is TypedArray | NdArray =>
  (isTypedArray(value) || isNdArray(value)) && partOf(value).bytes.byteLength >= DEFERRED_COPY

/**
 * A large array stored as it is: everything written but its bytes, which `fill` copies piece by
 * piece (`Blocks.writeRawDeferred`), so the cache hashes each piece and its store writes it while
 * the next is copied. The layout is `encodeWith`'s with no codec.
 */
const encodeDeferred = (value: TypedArray | NdArray, policy: Blocks.BlockPolicy, headerRoom: number) => {
  const { out, parts, rawBytes } = prepare(value, headerRoom)
  const part = parts[0]![1]
  writePartHeader(out, part)
  const fill = Blocks.writeRawDeferred(out, part.bytes)
  return { ...framed(out, false, policy, rawBytes), fill }
}

const prepare = (value: Value, headerRoom: number) => {
  const single = isTypedArray(value) || isNdArray(value)
  const parts: Array<readonly [Uint8Array | undefined, Part]> = single
    ? [[undefined, partOf(value)]]
    : Object.keys(value).map((
      name
    ) => [utf8Encoder.encode(name), partOf((value as Record<string, TypedArray | NdArray>)[name]!)])
  let size = headerRoom + 2 + (single ? 0 : 4)
  let rawBytes = 0
  for (const [name, part] of parts) {
    size += (name === undefined ? 0 : 4 + name.byteLength) + partBound(part)
    rawBytes += part.bytes.byteLength
  }
  // The worst case, from the pool (touched memory when a put of this size ran before); pages of a
  // new buffer past what is written are never touched, so never resident.
  const out = new Blocks.Writer(BufferPool.take(size), headerRoom)
  out.u8(single ? 0 : 1)
  out.u8(0)
  if (!single) out.u32(parts.length)
  return { out, parts, rawBytes }
}

const framed = (out: Blocks.Writer, compressed: boolean, policy: Blocks.BlockPolicy, rawBytes: number) => ({
  bytes: out.bytes.subarray(0, out.offset),
  codec: compressed ? policy.spec.codec : "none" as const,
  rawBytes,
  // Version 2 only added the planes block: without one, releases that read version 1 read it too.
  formatVersion: out.planesBlocks > 0 ? 2 : 1
})

interface PartHeader {
  readonly kind: Kind
  readonly shape: Array<number> | undefined
  readonly rawLength: number
}

const readPartHeader = (input: Blocks.Reader): PartHeader => {
  const kind = byCode.get(input.u8())
  if (kind === undefined) throw new RangeError("unknown dtype code")
  const nd = input.u8() === 1
  let shape: Array<number> | undefined
  if (nd) {
    const ndim = input.u32()
    if (ndim > 64) throw new RangeError(`${ndim} dimensions`)
    shape = []
    for (let i = 0; i < ndim; i++) shape.push(input.f64())
  }
  // The raw length sits in the block stream header, just ahead.
  const rawLength = input.view.getFloat64(input.offset + 5, true)
  if (!Number.isSafeInteger(rawLength) || rawLength < 0 || rawLength % kind.width !== 0) {
    throw new RangeError(`bad array length ${rawLength}`)
  }
  return { kind, shape, rawLength }
}

const partValue = ({ kind, shape }: PartHeader, buffer: ArrayBuffer): TypedArray | NdArray => {
  const data = kind.make(buffer)
  if (shape === undefined) return data
  if (kind.dtype === undefined || shape.reduce((a, b) => a * b, 1) !== data.length) {
    throw new RangeError("shape does not match data")
  }
  return { data, shape, dtype: kind.dtype }
}

const readPart = (input: Blocks.Reader): TypedArray | NdArray => {
  const header = readPartHeader(input)
  const buffer = BufferPool.result(header.rawLength)
  Blocks.read(input, new Uint8Array(buffer))
  return partValue(header, buffer)
}

/**
 * `readPart` for a large array. The result, an ordinary `ArrayBuffer`, is the spare of its size
 * when one is ready; the spare still being faulted in when not (the blocks wait for the fill below
 * where they write, `BufferPool.resultWaiting`); else fresh memory, faulted in from the top by the
 * threadpool (`Prefault.help`) while the blocks are decoded into it from the bottom.
 */
const readPartAsync = async (input: Blocks.Reader): Promise<TypedArray | NdArray> => {
  const header = readPartHeader(input)
  const { buffer, ready } = BufferPool.resultWaiting(header.rawLength)
  const bytes = new Uint8Array(buffer)
  if (ready !== undefined) {
    await Blocks.readAsync(input, bytes, ready, Prefault.PIECE)
  } else if (header.rawLength < Prefault.MIN_SIZE || BufferPool.prefaulted(buffer)) {
    Blocks.read(input, bytes)
  } else {
    await Blocks.readAsync(input, bytes, Prefault.help(bytes, Blocks.helpFrom(input, header.rawLength)), Prefault.PIECE)
  }
  return partValue(header, buffer)
}

/**
 * `FormatHandler.place`: one array of at least `Prefault.MIN_SIZE` bytes is read into its own
 * result (`BufferPool.readTarget`), so a get faults in one buffer, not two. Stored raw, each block's
 * bytes go to their place in it (`Blocks.placeRaw`). Compressed, the payload goes to its tail and is
 * decoded in place, front to back, when each block's output ends before the next block's input
 * (`Blocks.decodableInPlace`; otherwise it is copied out and decoded as `decode` would). Columns,
 * a payload longer than its array, a stream that is not shuffled, and anything planned otherwise,
 * are read whole.
 */
const place = (
  head: Uint8Array,
  length: number,
  _version: number,
  codec: CompressionCodec
): Placement<TypedArray | NdArray> | undefined => {
  if (length < Prefault.MIN_SIZE) return undefined
  try {
    const input = new Blocks.Reader(head, 0)
    if (readLayout(input) !== 0) return undefined
    const header = readPartHeader(input)
    if (header.rawLength < Prefault.MIN_SIZE) return undefined
    if (codec !== "none") return placeCompressed(head, length, header, input.offset)
    const prefix = new Uint8Array(head.subarray(0, input.offset))
    const { buffer, ready } = BufferPool.readTarget(header.rawLength)
    const stream = Blocks.placeRaw(input, new Uint8Array(buffer))
    if (stream === undefined || prefix.byteLength + stream.length !== length) return undefined
    const prefixView = new Uint8Array(prefix.byteLength)
    return {
      views: [prefixView, ...stream.views],
      ready,
      touched: ready !== undefined || BufferPool.prefaulted(buffer),
      finish: () => {
        for (let i = 0; i < prefix.byteLength; i++) {
          if (prefixView[i] !== prefix[i]) throw new RangeError("array header differs from the one planned from")
        }
        stream.check()
        BufferPool.prepareNext(header.rawLength)
        return partValue(header, buffer)
      }
    }
  } catch {
    return undefined
  }
}

/** Bytes of a block stream's header: shuffle width, block size, raw length. */
const STREAM_HEADER = 13

/** `place` of a compressed array: the payload into the tail of its result, decoded in place. */
const placeCompressed = (
  head: Uint8Array,
  length: number,
  header: PartHeader,
  streamAt: number
): Placement<TypedArray | NdArray> | undefined => {
  const rawLength = header.rawLength
  // An unshuffled stream's LZ4 blocks decode straight into their target; its payload may not fit.
  if (length > rawLength || head.byteLength < streamAt + STREAM_HEADER || head[streamAt] === 1) return undefined
  const planned = new Uint8Array(head.subarray(0, streamAt + STREAM_HEADER))
  const { buffer, ready } = BufferPool.readTarget(rawLength)
  const result = new Uint8Array(buffer)
  const tail = result.subarray(rawLength - length)
  return {
    views: [tail],
    ready,
    touched: ready !== undefined || BufferPool.prefaulted(buffer),
    finish: () => {
      for (let i = 0; i < planned.byteLength; i++) {
        if (tail[i] !== planned[i]) throw new RangeError("array header differs from the one planned from")
      }
      const input = new Blocks.Reader(tail, streamAt)
      if (!Blocks.decodableInPlace(input, result)) {
        // A late block that did not shrink: its output would overrun the next one's input.
        const copy = BufferPool.take(length)
        copy.set(tail)
        const value = decodePayload(copy)
        BufferPool.give(copy)
        return value as TypedArray | NdArray
      }
      Blocks.read(input, result)
      BufferPool.prepareNext(rawLength)
      return partValue(header, buffer)
    }
  }
}

const decodePayload = (payload: Uint8Array): Value => {
  const input = new Blocks.Reader(payload, 0)
  const layout = readLayout(input)
  if (layout === 0) return readPart(input)
  const count = input.u32()
  const out: Record<string, TypedArray | NdArray> = {}
  for (let i = 0; i < count; i++) {
    const name = utf8Decoder.decode(input.take(input.u32()))
    // defineProperty: a column named "__proto__" must stay a column.
    Object.defineProperty(out, name, { value: readPart(input), enumerable: true, writable: true, configurable: true })
  }
  return out
}

const decodePayloadAsync = async (payload: Uint8Array): Promise<Value> => {
  const input = new Blocks.Reader(payload, 0)
  const layout = readLayout(input)
  if (layout === 0) return readPartAsync(input)
  const count = input.u32()
  const out: Record<string, TypedArray | NdArray> = {}
  for (let i = 0; i < count; i++) {
    const name = utf8Decoder.decode(input.take(input.u32()))
    const value = await readPartAsync(input)
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true })
  }
  return out
}

const readLayout = (input: Blocks.Reader): number => {
  const layout = input.u8()
  if (input.u8() !== 0 || !littleEndian) throw new RangeError("byte order differs from this machine's")
  if (layout !== 0 && layout !== 1) throw new RangeError(`unknown layout ${layout}`)
  return layout
}

const policyOf = (settings: CompressionSettings): Blocks.BlockPolicy => ({
  spec: Compression.byName[settings.codec],
  level: settings.level,
  shuffle: settings.shuffle,
  minSize: settings.minSize,
  minSavings: settings.minSavings,
  planes: true
})

const failure = (reason: CodecError["reason"], method: string, cause: unknown, what: string) =>
  new CodecError({
    reason,
    method,
    format: "ndarray",
    description: `${what}: ${(cause as Error)?.message ?? String(cause)}`,
    cause
  })

/**
 * The "ndarray" format.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler: FormatHandler<Value> = makeHandler({
  format: "ndarray",
  version: 2,
  kind: "array",
  guard: (value): value is Value => isTypedArray(value) || isColumns(value) || isNdArray(value),
  encode: (value) =>
    Effect.try({
      try: () => encodeWith(value, uncompressed, 0).bytes,
      catch: (cause) => failure("Unserializable", "Codec.encode", cause, "array could not be written")
    }),
  encodeFramed: (value, settings, headerRoom) => {
    const policy = policyOf(settings)
    const catcher = (cause: unknown) => failure("CompressionFailed", "Codec.encode", cause, `${settings.codec} failed`)
    if (policy.spec.id === 0 && copiesLater(value)) {
      return Effect.try({ try: () => encodeDeferred(value, policy, headerRoom), catch: catcher })
    }
    return parallelEncode(value, policy)
      ? Effect.tryPromise({ try: () => encodeParallel(value, policy, headerRoom), catch: catcher })
      : Effect.try({ try: () => encodeWith(value, policy, headerRoom), catch: catcher })
  },
  retainsPayload: false,
  place,
  decode: (payload) => decodePayload(payload),
  decodeEffect: (payload) =>
    payload.byteLength < Prefault.MIN_SIZE && !mayBeLarge(payload)
      ? Effect.try({ try: () => decodePayload(payload), catch: corrupt })
      : Effect.tryPromise({ try: () => decodePayloadAsync(payload), catch: corrupt })
})

const corrupt = (cause: unknown) => failure("Corrupt", "Codec.decode", cause, "array payload does not decode")

/** One typed array or nd-array large enough for the threadpool, compressed with LZ4. */
const parallelEncode = (value: Value, policy: Blocks.BlockPolicy): value is TypedArray | NdArray =>
  policy.spec.id === Compression.byName.lz4.id && (isTypedArray(value) || isNdArray(value)) &&
  (isNdArray(value) ? value.data : value as TypedArray).byteLength > Blocks.BLOCK_SIZE

/**
 * Whether a small payload still holds one large array (well compressed): its raw length, read
 * without parsing further. Columns are judged by the payload's size alone; a payload too short
 * to say is small.
 */
const mayBeLarge = (payload: Uint8Array): boolean => {
  try {
    const input = new Blocks.Reader(payload, 0)
    return readLayout(input) === 0 && readPartHeader(input).rawLength >= Prefault.MIN_SIZE
  } catch {
    return false
  }
}
