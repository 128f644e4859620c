/**
 * The header in front of every stored value, so a reader (a later release, another process, the
 * CLI) knows what the bytes are without guessing:
 *
 * ```
 * offset  size  field
 * 0       2     magic 0xCA 0xC5
 * 2       1     header version (1)
 * 3       1     compression codec id (see compression.ts)
 * 4       1     format id length n (1..255)
 * 5       n     format id, ASCII
 * 5+n     1..8  format version, unsigned LEB128
 * ...     1..8  raw (uncompressed) payload length, unsigned LEB128
 * ...           payload
 * ```
 *
 * A "v8" value of 150 B carries a 10-byte header. Everything after the header version may change
 * in a later header version; the first three bytes never do.
 *
 * @since 0.1.0
 */
import { CodecError } from "../services/Codec.js"
import type { CompressionCodec } from "../services/Codec.js"
import * as Compression from "./compression.js"

/**
 * @since 0.1.0
 * @category constants
 */
export const MAGIC_0 = 0xca

/**
 * @since 0.1.0
 * @category constants
 */
export const MAGIC_1 = 0xc5

/**
 * @since 0.1.0
 * @category constants
 */
export const HEADER_VERSION = 1

// 2^53 needs 8 LEB128 groups; more than that cannot be a length we wrote.
const MAX_VARINT_BYTES = 8

/**
 * A parsed header. The format id is left as a byte range so the hot path can match it against
 * registered handlers without building a string.
 *
 * @since 0.1.0
 * @category models
 */
export interface Header {
  readonly codec: Compression.CompressionSpec
  readonly formatStart: number
  readonly formatEnd: number
  readonly formatVersion: number
  readonly rawLength: number
  readonly payloadOffset: number
}

/**
 * A format id is short printable ASCII without spaces, so it reads well in `inspect` and the CLI.
 *
 * @since 0.1.0
 * @category validation
 */
export const isValidFormatId = (format: string): boolean => /^[\x21-\x7e]{1,255}$/.test(format)

/**
 * The constant part of a header for one format and version: magic, header version, a codec slot
 * (byte 3, filled per value), format id and format version. Built once per handler.
 *
 * @since 0.1.0
 * @category encoding
 */
export const template = (format: string, formatVersion: number): Uint8Array => {
  if (!isValidFormatId(format)) throw new Error(`invalid format id ${JSON.stringify(format)}`)
  if (!Number.isSafeInteger(formatVersion) || formatVersion < 0) {
    throw new Error(`invalid format version ${formatVersion} for ${format}`)
  }
  const out = new Uint8Array(5 + format.length + varintSize(formatVersion))
  out[0] = MAGIC_0
  out[1] = MAGIC_1
  out[2] = HEADER_VERSION
  out[4] = format.length
  for (let i = 0; i < format.length; i++) out[5 + i] = format.charCodeAt(i)
  writeVarint(out, 5 + format.length, formatVersion)
  return out
}

/**
 * Header + payload in one buffer (a Node `Buffer`; small ones share Node's allocation pool, so a
 * store that keeps bytes in memory should copy them — the memory stores do).
 *
 * @since 0.1.0
 * @category encoding
 */
export const frame = (prefix: Uint8Array, codecId: number, rawLength: number, payload: Uint8Array): Uint8Array => {
  const headerLength = prefix.length + varintSize(rawLength)
  // allocUnsafe: small sizes come from Node's pool (~0.1 µs) where `new Uint8Array` pays for a
  // fresh backing store (~1.5 µs for 200 B). Every byte is written below, none left uninitialised.
  const out = Buffer.allocUnsafe(headerLength + payload.byteLength)
  out.set(prefix, 0)
  out[3] = codecId
  writeVarint(out, prefix.length, rawLength)
  out.set(payload, headerLength)
  return out
}

/**
 * Bytes a framed header takes: the template plus an 8-byte raw length, so a handler that writes
 * its payload in place (`encodeFramed`) knows where to start before it knows the final size.
 *
 * @since 0.1.0
 * @category encoding
 */
export const framedHeaderSize = (prefix: Uint8Array): number => prefix.length + MAX_VARINT_BYTES

/**
 * Writes the header in front of a payload written in place. The raw length is a padded LEB128 of
 * exactly 8 groups (continuation bits on the first seven), which `parse` reads like any varint.
 *
 * @since 0.1.0
 * @category encoding
 */
export const writeFramed = (out: Uint8Array, prefix: Uint8Array, codecId: number, rawLength: number): void => {
  out.set(prefix, 0)
  out[3] = codecId
  let n = rawLength
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    const group = n % 128
    n = Math.floor(n / 128)
    out[prefix.length + i] = i === MAX_VARINT_BYTES - 1 ? group : group | 0x80
  }
}

/**
 * Parses a header; garbage or truncation is "Corrupt", a header version or codec id this release
 * does not know is "UnknownFormat" (written by a newer cacheness, most likely).
 *
 * @since 0.1.0
 * @category decoding
 */
export const parse = (bytes: Uint8Array, method: string): Header | CodecError => {
  const length = bytes.length
  if (length < 7) return corrupt(method, `${length} bytes is shorter than any header`)
  if (bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1) return corrupt(method, "not a cacheness value (bad magic bytes)")
  if (bytes[2] !== HEADER_VERSION) {
    return new CodecError({
      reason: "UnknownFormat",
      method,
      description: `header version ${bytes[2]} is not supported by this release (supports ${HEADER_VERSION})`
    })
  }
  const codec = Compression.byId[bytes[3]!]
  if (codec === undefined) {
    return new CodecError({ reason: "UnknownFormat", method, description: `unknown compression codec id ${bytes[3]}` })
  }
  const formatLength = bytes[4]!
  const formatStart = 5
  const formatEnd = formatStart + formatLength
  if (formatLength === 0) return corrupt(method, "empty format id")
  let offset = formatEnd
  // Inline varint reads: the hot path must not allocate a result object per field.
  let formatVersion = 0
  let scale = 1
  for (let i = 0;; i++) {
    if (offset >= length || i === MAX_VARINT_BYTES) return corrupt(method, "truncated header (format version)")
    const byte = bytes[offset++]!
    formatVersion += (byte & 0x7f) * scale
    scale *= 128
    if (byte < 0x80) break
  }
  let rawLength = 0
  scale = 1
  for (let i = 0;; i++) {
    if (offset >= length || i === MAX_VARINT_BYTES) return corrupt(method, "truncated header (raw length)")
    const byte = bytes[offset++]!
    rawLength += (byte & 0x7f) * scale
    scale *= 128
    if (byte < 0x80) break
  }
  if (!Number.isSafeInteger(rawLength)) return corrupt(method, "raw length out of range")
  return { codec, formatStart, formatEnd, formatVersion, rawLength, payloadOffset: offset }
}

/**
 * The format id of a parsed header as a string.
 *
 * @since 0.1.0
 * @category decoding
 */
export const formatOf = (bytes: Uint8Array, header: Header): string =>
  String.fromCharCode.apply(null, bytes.subarray(header.formatStart, header.formatEnd) as unknown as Array<number>)

/**
 * Whether the header's format id equals `format` (given as its bytes), without allocating.
 *
 * @since 0.1.0
 * @category decoding
 */
export const formatEquals = (bytes: Uint8Array, header: Header, format: Uint8Array): boolean => {
  const n = header.formatEnd - header.formatStart
  if (n !== format.length) return false
  for (let i = 0; i < n; i++) {
    if (bytes[header.formatStart + i] !== format[i]) return false
  }
  return true
}

/**
 * @since 0.1.0
 * @category decoding
 */
export const codecName = (header: Header): CompressionCodec => header.codec.codec

const corrupt = (method: string, description: string) => new CodecError({ reason: "Corrupt", method, description })

/**
 * Bytes an unsigned LEB128 varint of `n` takes.
 *
 * @since 0.1.0
 * @category encoding
 */
export const varintSize = (n: number): number => {
  let size = 1
  while (n >= 128) {
    n = Math.floor(n / 128)
    size++
  }
  return size
}

// Division rather than `>>>` so lengths above 2^31 stay exact.
const writeVarint = (out: Uint8Array, offset: number, n: number): number => {
  while (n >= 128) {
    out[offset++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  out[offset++] = n
  return offset
}
