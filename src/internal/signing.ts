/**
 * HMAC signing of stored entries (`signing: { key }`). With a key configured the checksum column
 * holds `hmac-sha256:<hex>` instead of the XXH64 of the stored bytes, so whoever can write the
 * cache directory but does not hold the key cannot plant or alter a value a reader accepts.
 *
 * The MAC covers a domain tag, the cache key, the stored length and the stored bytes themselves.
 * The stored bytes begin with the value header (format id and version, compression codec, raw
 * length), so format, codec and sizes are covered without repeating them. Binding the cache key
 * stops a valid entry from being replayed under another key. The bytes go into the HMAC directly
 * rather than through XXH64 first: XXH64 is not collision resistant, so signing only its digest
 * would let a forger swap in other bytes with the same digest.
 *
 * The key lives only in memory (a `KeyObject`); nothing derived from it but MACs is written.
 *
 * @since 0.1.0
 */
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"

/**
 * @since 0.1.0
 * @category constants
 */
export const SIGNATURE_PREFIX = "hmac-sha256:"

const DOMAIN = Buffer.from("cacheness-entry-v1\0")

/**
 * Whether a checksum column holds a signature. XXH64 checksums are hex, which never starts with
 * "h", so one character decides.
 *
 * @since 0.1.0
 * @category signing
 */
export const isSigned = (checksum: string): boolean =>
  typeof checksum === "string" && checksum.charCodeAt(0) === 104 /* "h" */

/**
 * Signs and checks entries with one key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Signer {
  readonly sign: (key: string, bytes: Uint8Array) => string
  readonly verify: (key: string, bytes: Uint8Array, checksum: string) => boolean
}

/**
 * The key's bytes (a string is taken as UTF-8), or `null` when the secret is empty or not a string
 * or bytes (a `Redacted` can hold anything).
 *
 * @since 0.1.0
 * @category signing
 */
export const keyBytes = (secret: unknown): Uint8Array | null => {
  const raw = Redacted.isRedacted(secret) ? Redacted.value(secret) : secret
  const bytes = typeof raw === "string" ? Buffer.from(raw, "utf8") : raw instanceof Uint8Array ? Uint8Array.from(raw) : null
  return bytes === null || bytes.length === 0 ? null : bytes
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (secret: Uint8Array): Signer => {
  const key = Crypto.createSecretKey(secret)
  const sign = (cacheKey: string, bytes: Uint8Array): string => {
    const length = Buffer.allocUnsafe(8)
    length.writeBigUInt64BE(BigInt(bytes.length))
    return SIGNATURE_PREFIX +
      Crypto.createHmac("sha256", key).update(DOMAIN).update(cacheKey).update(length).update(bytes).digest("hex")
  }
  return {
    sign,
    verify: (cacheKey, bytes, checksum) => {
      if (!isSigned(checksum)) return false
      const expected = Buffer.from(sign(cacheKey, bytes))
      const actual = Buffer.from(checksum)
      return expected.length === actual.length && Crypto.timingSafeEqual(expected, actual)
    }
  }
}
