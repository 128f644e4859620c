/**
 * The compression codecs as a table: id written into headers, availability in this runtime, and
 * the sync compress / decompress functions. Adding a codec is adding a row.
 *
 * Ids are persisted in every stored value's header: never reuse or renumber one.
 *
 * @since 0.1.0
 */
import * as Lz4 from "lz4-napi"
import * as Zlib from "node:zlib"
import type { CompressionCodec } from "./service.js"

/**
 * One compression codec.
 *
 * @since 0.1.0
 * @category models
 */
export interface CompressionSpec {
  readonly codec: CompressionCodec
  /** Persisted in headers (one byte). */
  readonly id: number
  /** False when this runtime cannot run the codec (zstd on Node 20): requesting it is a typed error. */
  readonly available: boolean
  /** Level used when none is configured; `undefined` when the codec has no levels. */
  readonly defaultLevel: number | undefined
  /** Throws on failure; the caller turns that into a `CodecError`. */
  readonly compress: (raw: Uint8Array, level: number | undefined) => Uint8Array
  /** Throws on failure; the result must be exactly `rawLength` bytes (checked by the caller). */
  readonly decompress: (payload: Uint8Array, rawLength: number) => Uint8Array
}

// lz4-napi's types ask for a Buffer; a view over the same memory costs no copy.
const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const unavailable = (codec: string) => () => {
  throw new Error(`${codec} is not available in this runtime`)
}

// zstd arrived in node:zlib with Node 22.15; typed loosely so the Node 20 types compile.
const zstd = Zlib as unknown as {
  readonly zstdCompressSync?: (buf: Uint8Array, options?: object) => Buffer
  readonly zstdDecompressSync?: (buf: Uint8Array, options?: object) => Buffer
  readonly constants: { readonly ZSTD_c_compressionLevel?: number }
}
const zstdAvailable = typeof zstd.zstdCompressSync === "function" && typeof zstd.zstdDecompressSync === "function"

/**
 * Every codec, available or not.
 *
 * @since 0.1.0
 * @category policy
 */
export const codecs: ReadonlyArray<CompressionSpec> = [
  {
    codec: "none",
    id: 0,
    available: true,
    defaultLevel: undefined,
    compress: (raw) => raw,
    decompress: (payload) => payload
  },
  {
    // lz4-napi writes LZ4 *block* format with a 4-byte little-endian uncompressed size in front
    // (lz4_flex `compress_prepend_size`); `checkLz4Size` reads it before anything is allocated.
    codec: "lz4",
    id: 1,
    available: true,
    defaultLevel: undefined,
    compress: (raw) => Lz4.compressSync(asBuffer(raw)),
    decompress: (payload, rawLength) => {
      checkLz4Size(payload, rawLength)
      return Lz4.uncompressSync(payload)
    }
  },
  {
    codec: "gzip",
    id: 2,
    available: true,
    defaultLevel: 6,
    compress: (raw, level) => Zlib.gzipSync(raw, { level: level ?? 6 }),
    // maxOutputLength stops a corrupt or hostile stream from inflating without bound.
    decompress: (payload, rawLength) => Zlib.gunzipSync(payload, { maxOutputLength: Math.max(rawLength, 1) })
  },
  {
    codec: "brotli",
    id: 3,
    available: true,
    // Brotli's own default (11) is an archiver's setting, ~100x slower than 4 for a few % gain.
    defaultLevel: 4,
    compress: (raw, level) =>
      Zlib.brotliCompressSync(raw, {
        params: {
          [Zlib.constants.BROTLI_PARAM_QUALITY]: level ?? 4,
          [Zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.byteLength
        }
      }),
    decompress: (payload, rawLength) => Zlib.brotliDecompressSync(payload, { maxOutputLength: Math.max(rawLength, 1) })
  },
  {
    codec: "zstd",
    id: 4,
    available: zstdAvailable,
    defaultLevel: 3,
    compress: zstdAvailable
      ? (raw, level) =>
        zstd.zstdCompressSync!(raw, { params: { [zstd.constants.ZSTD_c_compressionLevel!]: level ?? 3 } })
      : unavailable("zstd"),
    decompress: zstdAvailable
      ? (payload, rawLength) => zstd.zstdDecompressSync!(payload, { maxOutputLength: Math.max(rawLength, 1) })
      : unavailable("zstd")
  }
]

/**
 * Codecs by name.
 *
 * @since 0.1.0
 * @category policy
 */
export const byName: Readonly<Record<CompressionCodec, CompressionSpec>> = Object.fromEntries(
  codecs.map((spec) => [spec.codec, spec])
) as Record<CompressionCodec, CompressionSpec>

/**
 * Codecs by header id (a dense array: the header parser indexes it directly).
 *
 * @since 0.1.0
 * @category policy
 */
export const byId: ReadonlyArray<CompressionSpec | undefined> = codecs.reduce<Array<CompressionSpec | undefined>>(
  (table, spec) => {
    table[spec.id] = spec
    return table
  },
  []
)

/**
 * When compressing pays. Below `minSize` the codec's framing costs more than it saves (LZ4 makes a
 * 150 B JSON value 3.6% bigger); a result that saves less than `minSavings` is not worth the
 * decompression on every read.
 *
 * @since 0.1.0
 * @category models
 */
export interface CompressionPolicy {
  readonly spec: CompressionSpec
  readonly level: number | undefined
  readonly minSize: number
  /** A fraction: 0.03 stores raw unless compression saves at least 3%. */
  readonly minSavings: number
}

/**
 * Defaults for the policy's thresholds.
 *
 * @since 0.1.0
 * @category policy
 */
export const defaults = {
  codec: "lz4" as CompressionCodec,
  minSize: 256,
  minSavings: 0.03
} as const

/**
 * Applies the policy: the payload to store and the codec actually used. Throws when the codec
 * throws; an unavailable codec is rejected before this is called.
 *
 * @since 0.1.0
 * @category compression
 */
export const compress = (
  raw: Uint8Array,
  policy: CompressionPolicy
): { readonly spec: CompressionSpec; readonly payload: Uint8Array } => {
  if (policy.spec.id === 0 || raw.byteLength < policy.minSize) return { spec: none, payload: raw }
  const packed = policy.spec.compress(raw, policy.level)
  return packed.byteLength <= raw.byteLength * (1 - policy.minSavings)
    ? { spec: policy.spec, payload: packed }
    : { spec: none, payload: raw }
}

const none: CompressionSpec = codecs[0]!

/**
 * Rejects an LZ4 block whose size prefix disagrees with the header, before lz4-napi allocates
 * whatever a corrupt prefix claims.
 *
 * @since 0.1.0
 * @category compression
 */
export const checkLz4Size = (payload: Uint8Array, rawLength: number): void => {
  if (payload.byteLength < 4) throw new Error("LZ4 block shorter than its size prefix")
  const stated = (payload[0]! | (payload[1]! << 8) | (payload[2]! << 16) | (payload[3]! << 24)) >>> 0
  if (stated !== rawLength) {
    throw new Error(`LZ4 block states ${stated} bytes, header states ${rawLength}`)
  }
}
