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
