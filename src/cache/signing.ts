/**
 * HMAC signing of stored entries (`signing: { key }`). With a key configured the checksum column
 * holds `hmac-sha256-v3:<hex>` instead of the XXH64 of the stored bytes, so whoever can write the
 * cache directory but does not hold the key cannot plant or alter a value, or the row fields a
 * reader trusts, without the entry being rejected.
 *
 * The MAC covers a domain tag, then every row field a reader acts on — the cache key, namespace,
 * description, format, codec, stored and raw sizes, expiry, end of grace (`staleUntil`), key params
 * and user metadata — each
 * type-tagged and length-prefixed, then the stored length and the stored bytes themselves (which
 * begin with the value header: format, codec, raw length and the key slot). Not covered: creation
 * and access times and hit counts, which change on every read and only order eviction.
 *
 * Binding the cache key stops a valid entry from being replayed under another key; binding the
 * expiry stops `expires_at = NULL` from serving an entry forever; binding params and metadata
 * stops forged ones from being returned or matched by `invalidateWhere`. The bytes go into the
 * HMAC directly rather than through XXH64 first: XXH64 is not collision resistant, so signing only
 * its digest would let a forger swap in other bytes with the same digest.
 *
 * The second scheme (`hmac-sha256-v2:`) is the same without `staleUntil`. Its signatures keep
 * verifying for entries without grace (`staleUntil` equal to the expiry: every entry written before
 * grace existed), so a cache signed by an older release stays readable; a v2 signature never vouches
 * for a grace, so an entry whose `staleUntil` was moved past its expiry under one is rejected.
 * `touch` and every new put sign under v3.
 *
 * Signatures of the first scheme (`hmac-sha256:`, bytes and key only) are not accepted: they say
 * nothing about the row, so such an entry is a miss and is removed like a tampered one.
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
export const SIGNATURE_PREFIX = "hmac-sha256-v3:"

/**
 * The prefix of the second scheme, which did not cover `staleUntil` (accepted for entries without grace).
 *
 * @since 0.1.0
 * @category constants
 */
export const SIGNATURE_PREFIX_V2 = "hmac-sha256-v2:"

/**
 * The prefix of the first scheme, which covered the key and the bytes only.
 *
 * @since 0.1.0
 * @category constants
 */
export const SIGNATURE_PREFIX_V1 = "hmac-sha256:"

const DOMAIN_V2 = Buffer.from("cacheness-entry-v2\0")
const DOMAIN = Buffer.from("cacheness-entry-v3\0")

/**
 * Whether a checksum column holds a signature (of either scheme). XXH64 checksums are hex, which
 * never starts with "h", so one character decides.
 *
 * @since 0.1.0
 * @category signing
 */
export const isSigned = (checksum: string): boolean =>
  typeof checksum === "string" && checksum.charCodeAt(0) === 104 /* "h" */

/**
 * Whether a checksum column holds a signature of the first scheme, which this release rejects.
 *
 * @since 0.1.0
 * @category signing
 */
export const isLegacy = (checksum: string): boolean =>
  typeof checksum === "string" && checksum.startsWith(SIGNATURE_PREFIX_V1)

/**
 * The row fields a signature covers.
 *
 * @since 0.1.0
 * @category models
 */
export interface SignedFields {
  readonly key: string
  readonly namespace: string
  readonly description: string | null
  readonly format: string
  readonly codec: string
  readonly storedBytes: number
  readonly rawBytes: number
  readonly expiresAt: number | null
  /** End of the grace; absent means the expiry (no grace). */
  readonly staleUntil?: number | null | undefined
  readonly params: string | null
  readonly metadata: string | null
}

/**
 * Signs and checks entries with one key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Signer {
  readonly sign: (fields: SignedFields, bytes: Uint8Array) => string
  readonly verify: (fields: SignedFields, bytes: Uint8Array, checksum: string) => boolean
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
  const bytes = typeof raw === "string"
    ? Buffer.from(raw, "utf8")
    : raw instanceof Uint8Array
    ? Uint8Array.from(raw)
    : null
  return bytes === null || bytes.length === 0 ? null : bytes
}

const NULL_FIELD = Buffer.from([0])

const staleUntilOf = (fields: SignedFields): number | null =>
  fields.staleUntil === undefined ? fields.expiresAt : fields.staleUntil

/** A field as tag + length + UTF-8, so no two rows encode alike (`null` differs from `""`). */
const field = (hmac: Crypto.Hmac, value: string | number | null): void => {
  if (value === null) {
    hmac.update(NULL_FIELD)
    return
  }
  const text = Buffer.from(typeof value === "number" ? `n${value}` : `s${value}`, "utf8")
  const length = Buffer.allocUnsafe(9)
  length[0] = 1
  length.writeBigUInt64BE(BigInt(text.length), 1)
  hmac.update(length).update(text)
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (secret: Uint8Array): Signer => {
  const key = Crypto.createSecretKey(secret)
  const mac = (fields: SignedFields, bytes: Uint8Array, v2: boolean): string => {
    const hmac = Crypto.createHmac("sha256", key).update(v2 ? DOMAIN_V2 : DOMAIN)
    field(hmac, fields.key)
    field(hmac, fields.namespace)
    field(hmac, fields.description)
    field(hmac, fields.format)
    field(hmac, fields.codec)
    field(hmac, fields.storedBytes)
    field(hmac, fields.rawBytes)
    field(hmac, fields.expiresAt)
    if (!v2) field(hmac, staleUntilOf(fields))
    field(hmac, fields.params)
    field(hmac, fields.metadata)
    const length = Buffer.allocUnsafe(8)
    length.writeBigUInt64BE(BigInt(bytes.length))
    return (v2 ? SIGNATURE_PREFIX_V2 : SIGNATURE_PREFIX) + hmac.update(length).update(bytes).digest("hex")
  }
  return {
    sign: (fields, bytes) => mac(fields, bytes, false),
    verify: (fields, bytes, checksum) => {
      if (typeof checksum !== "string") return false
      const v2 = checksum.startsWith(SIGNATURE_PREFIX_V2)
      if (!v2 && !checksum.startsWith(SIGNATURE_PREFIX)) return false
      // A v2 signature says nothing about grace: it vouches only for an entry without one.
      if (v2 && staleUntilOf(fields) !== fields.expiresAt) return false
      const expected = Buffer.from(mac(fields, bytes, v2))
      const actual = Buffer.from(checksum)
      return expected.length === actual.length && Crypto.timingSafeEqual(expected, actual)
    }
  }
}
