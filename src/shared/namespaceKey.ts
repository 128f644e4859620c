/**
 * The one rule that puts a namespace into an entry's identity. The key of named parameters in a
 * namespace is derived from their default-namespace key, so every part of the library that knows
 * a row's key and namespace — the engine, and the metadata stores migrating an old layout without
 * the parameters — computes the same key:
 *
 * - the default namespace (`""`) keeps the key as is, byte-for-byte what it always was;
 * - any other namespace `ns` gives XXH64 (seed 0), as 16 lowercase hex digits, of
 *   `"cacheness/namespace\0"` ‖ the UTF-8 byte length of `ns` as 4 bytes big-endian ‖ `ns` in
 *   UTF-8 ‖ the 16 ASCII hex digits of the default-namespace key.
 *
 * The domain tag keeps these inputs apart from any parameter encoding, and the length prefix keeps
 * `(ns, key)` pairs apart from one another. It is fixed XXH64 whatever Hasher a cache uses: the
 * stores must migrate rows without one.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import xxhash from "xxhash-wasm"

/**
 * The namespace of entries put without one.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_NAMESPACE = ""

/**
 * A namespaced key from the default-namespace key (see the module documentation).
 *
 * @since 0.1.0
 * @category models
 */
export type Derive = (namespace: string, key: string) => string

const DOMAIN = new TextEncoder().encode("cacheness/namespace\0")
const encoder = new TextEncoder()

let instance: Promise<Derive> | undefined

const build = (h64Raw: (input: Uint8Array, seed?: bigint) => bigint): Derive => (namespace, key) => {
  if (namespace === DEFAULT_NAMESPACE) return key
  const ns = encoder.encode(namespace)
  const bytes = new Uint8Array(DOMAIN.length + 4 + ns.length + key.length)
  bytes.set(DOMAIN, 0)
  new DataView(bytes.buffer).setUint32(DOMAIN.length, ns.length)
  bytes.set(ns, DOMAIN.length + 4)
  for (let i = 0; i < key.length; i++) bytes[DOMAIN.length + 4 + ns.length + i] = key.charCodeAt(i) & 0x7f
  return h64Raw(bytes, 0n).toString(16).padStart(16, "0")
}

/**
 * The derivation, once xxhash-wasm is ready (one instance per process); synchronous afterwards.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load: Effect.Effect<Derive> = Effect.promise(() => instance ??= xxhash().then((api) => build(api.h64Raw)))

/** The value of each lower-case hex digit's code, -1 for every other code below 128. */
const LOWER_HEX = (() => {
  const table = new Int8Array(128).fill(-1)
  for (let i = 0; i < 16; i++) table["0123456789abcdef".charCodeAt(i)] = i
  return table
})()
/** The code of each lower-case hex digit. */
const HEX_CODE = Array.from("0123456789abcdef", (digit) => digit.charCodeAt(0))
/** Scratch for the 16 output codes (synchronous, so never shared by two calls). */
const rebound: Array<number> = new Array(16).fill(0)

/**
 * A row's checksum moved from key `from` to key `to`, for migrations that rekey rows. A plain
 * checksum is XXH64 of the bytes XOR the key (`cache/integrity.ts`), so it is rebound by XOR; any
 * other value (an HMAC signature, which covers the key and cannot be re-signed without the
 * signing key) is returned unchanged, and such an entry fails its check on read: a miss. All
 * three must be 16 lower-case hex digits. XORed digit by digit through a table: the same answer as
 * parsing the halves (`Number.parseInt`) and formatting them (`padStart`), for a fraction of the
 * cost (a namespace migration rebinds every row).
 *
 * @since 0.1.0
 * @category migrations
 */
export const rebindChecksum = (checksum: string, from: string, to: string): string => {
  if (checksum.length !== 16 || from.length !== 16 || to.length !== 16) return checksum
  for (let i = 0; i < 16; i++) {
    const a = LOWER_HEX[checksum.charCodeAt(i)]
    const b = LOWER_HEX[from.charCodeAt(i)]
    const c = LOWER_HEX[to.charCodeAt(i)]
    // Out of the table (a code ≥ 128) is undefined, which fails the test as -1 does.
    if (!(a >= 0 && b >= 0 && c >= 0)) return checksum
    rebound[i] = HEX_CODE[a ^ b ^ c]
  }
  return String.fromCharCode.apply(null, rebound)
}
