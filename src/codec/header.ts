/**
 * The header in front of every stored value, so a reader (a later release, another process, the
 * CLI) knows what the bytes are without guessing:
 *
 * ```
 * offset  size  field
 * 0       2     magic 0xCA 0xC5
 * 2       1     header version (2; 1 is still read)
 * 3       1     compression codec id (see compression.ts)
 * 4       1     format id length n (1..255)
 * 5       n     format id, ASCII
 * 5+n     1..8  format version, unsigned LEB128
 * ...     1..8  raw (uncompressed) payload length, unsigned LEB128
 * ...     8     the cache key the value was stored under (version 2 only; zeros until `writeKey`)
 * ...           payload
 * ```
 *
 * A "v8" value of 150 B carries an 18-byte header. Everything after the header version may change
 * in a later header version; the first three bytes never do.
 *
 * The key slot binds the bytes to their entry without hashing them: a blob file swapped with
 * another, or a row pointing at another entry's blob, names the wrong key and is rejected on read
 * whether or not checksums are verified. Version 1 values have no slot and are read as before.
 *
 * @since 0.1.0
 */
import * as Compression from "./compression.js"
import { CodecError } from "./service.js"
import type { CompressionCodec } from "./service.js"

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
export const HEADER_VERSION = 2

/**
 * Bytes of the key slot: a cache key is 16 hex digits.
 *
 * @since 0.1.0
 * @category constants
 */
export const KEY_BYTES = 8

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
  /** Where the key slot starts; -1 in a version 1 header, which has none. */
  readonly keyOffset: number
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
  const keyOffset = prefix.length + varintSize(rawLength)
  const headerLength = keyOffset + KEY_BYTES
  // allocUnsafe: small sizes come from Node's pool (~0.1 µs) where `new Uint8Array` pays for a
  // fresh backing store (~1.5 µs for 200 B). Every byte is written below, none left uninitialised.
  const out = Buffer.allocUnsafe(headerLength + payload.byteLength)
  out.set(prefix, 0)
  out[3] = codecId
  writeVarint(out, prefix.length, rawLength)
  out.fill(0, keyOffset, headerLength)
  out.set(payload, headerLength)
  return out
}

/**
 * Bytes a framed header takes: the template plus an 8-byte raw length and the key slot, so a handler that writes
 * its payload in place (`encodeFramed`) knows where to start before it knows the final size.
 *
 * @since 0.1.0
 * @category encoding
 */
export const framedHeaderSize = (prefix: Uint8Array): number => prefix.length + MAX_VARINT_BYTES + KEY_BYTES

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
  out.fill(0, prefix.length + MAX_VARINT_BYTES, prefix.length + MAX_VARINT_BYTES + KEY_BYTES)
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
  const version = bytes[2]!
  if (version !== HEADER_VERSION && version !== 1) {
    return new CodecError({
      reason: "UnknownFormat",
      method,
      description: `header version ${bytes[2]} is not supported by this release (supports 1 to ${HEADER_VERSION})`
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
  if (version === 1) {
    return { codec, formatStart, formatEnd, formatVersion, rawLength, keyOffset: -1, payloadOffset: offset }
  }
  if (offset + KEY_BYTES > length) return corrupt(method, "truncated header (key)")
  return {
    codec,
    formatStart,
    formatEnd,
    formatVersion,
    rawLength,
    keyOffset: offset,
    payloadOffset: offset + KEY_BYTES
  }
}

const hexDigit = (code: number): number => code <= 57 ? code - 48 : (code | 0x20) - 87

/**
 * Writes the cache key (16 hex digits) into the key slot of framed bytes; `false` when the bytes
 * have no slot (not a version 2 header), which leaves them unchanged.
 *
 * @since 0.1.0
 * @category encoding
 */
export const writeKey = (bytes: Uint8Array, key: string): boolean => {
  const header = parse(bytes, "Cache.put")
  if (header instanceof CodecError || header.keyOffset < 0 || key.length !== 2 * KEY_BYTES) return false
  for (let i = 0; i < KEY_BYTES; i++) {
    bytes[header.keyOffset + i] = (hexDigit(key.charCodeAt(2 * i)) << 4) | hexDigit(key.charCodeAt(2 * i + 1))
  }
  return true
}

/**
 * Whether stored bytes name `key` in their key slot: `true` or `false` for a version 2 header,
 * `undefined` when there is nothing to compare (a version 1 header, or bytes that do not parse —
 * decoding reports those).
 *
 * @since 0.1.0
 * @category decoding
 */
export const keyMatches = (bytes: Uint8Array, key: string): boolean | undefined => {
  const header = parse(bytes, "Cache.get")
  if (header instanceof CodecError || header.keyOffset < 0) return undefined
  if (key.length !== 2 * KEY_BYTES) return false
  for (let i = 0; i < KEY_BYTES; i++) {
    if (
      bytes[header.keyOffset + i] !== ((hexDigit(key.charCodeAt(2 * i)) << 4) | hexDigit(key.charCodeAt(2 * i + 1)))
    ) return false
  }
  return true
}

/**
 * The key the header names (16 hex digits), `undefined` when it names none (header version 1) or
 * does not parse.
 *
 * @since 0.1.0
 * @category decoding
 */
export const storedKey = (bytes: Uint8Array): string | undefined => {
  const header = parse(bytes, "Cache.get")
  if (header instanceof CodecError || header.keyOffset < 0) return undefined
  let out = ""
  for (let i = 0; i < KEY_BYTES; i++) out += bytes[header.keyOffset + i].toString(16).padStart(2, "0")
  return out
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
