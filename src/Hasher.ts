/**
 * The `Hasher` module of the public API: canonical, stable cache keys from named parameters and
 * content hashes of bytes, files and directories. The tag, its `Service` type, `KeyError`,
 * `make(impl)` for your own hasher, and the xxhash layer.
 *
 * @since 0.1.0
 */
import type * as Layer from "effect/Layer"
import type { Hasher } from "./key/service.js"
import * as Xxhash from "./key/xxhash.js"

export * from "./key/service.js"

/**
 * What every hasher provides; write `key`, `describe`, `hashBytes` and `hashPath` and let `make` fill in the rest.
 *
 * @since 0.1.0
 * @category models
 */
export type Service = Hasher.Service

/**
 * The default hasher: XXH64 through xxhash-wasm, with stat fingerprints from `PathFingerprints` when the context holds it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Hasher> = Xxhash.layer
