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

const HEX16 = /^[0-9a-f]{16}$/

const xor32 = (a: string, b: string, c: string): string =>
  ((Number.parseInt(a, 16) ^ Number.parseInt(b, 16) ^ Number.parseInt(c, 16)) >>> 0).toString(16).padStart(8, "0")

/**
 * A row's checksum moved from key `from` to key `to`, for migrations that rekey rows. A plain
 * checksum is XXH64 of the bytes XOR the key (`cache/integrity.ts`), so it is rebound by XOR; any
 * other value (an HMAC signature, which covers the key and cannot be re-signed without the
 * signing key) is returned unchanged, and such an entry fails its check on read: a miss.
 *
 * @since 0.1.0
 * @category migrations
 */
export const rebindChecksum = (checksum: string, from: string, to: string): string =>
  !HEX16.test(checksum) || !HEX16.test(from) || !HEX16.test(to)
    ? checksum
    : xor32(checksum.slice(0, 8), from.slice(0, 8), to.slice(0, 8)) +
      xor32(checksum.slice(8, 16), from.slice(8, 16), to.slice(8, 16))
