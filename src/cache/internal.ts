/**
 * What the engine hands its own parts beyond the public operations (the resolved configuration
 * and the plumbing of `cached`), behind a symbol so `Cache.Service` shows operations only.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { CacheError } from "../errors.js"
import type { CacheKey, KeyParams } from "../schema/CacheKey.js"
import type { NotSync } from "../shared/sync.js"
import type { Cache, GetOptions, ResolvedConfig } from "./service.js"

/**
 * The key of the internal part of a cache built by the engine.
 *
 * @since 0.1.0
 * @category symbols
 */
export const Internal: unique symbol = Symbol.for("cacheness/Cache/internal")

/**
 * What `cached` needs beyond the public operations: a read that also returns the expiry, leases
 * shared by every process using the cache, and a change counter for its in-memory layer.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoSupport {
  /** Like `get` (counts a hit or a miss), with the entry's expiry (epoch ms, `null` never). */
  readonly read: <A, I>(
    key: CacheKey,
    options: GetOptions<A, I>
  ) => Effect.Effect<Option.Option<{ readonly value: A; readonly expiresAt: number | null }>, CacheError>
  /** Takes or renews the lease on `key` for `holder`, for `duration` ms from now (Clock). */
  readonly acquireLease: (key: CacheKey, holder: string, duration: number) => Effect.Effect<boolean, CacheError>
  /** Gives the lease up if `holder` still holds it. */
  readonly releaseLease: (key: CacheKey, holder: string) => Effect.Effect<void, CacheError>
  /**
   * A number that changes whenever any entry may have changed (in any process), or `undefined`
   * when the store cannot tell: values held in memory must then not be trusted.
   */
  readonly changeCount: () => number | undefined
  /** Counts a hit on `key` served without reading the store. */
  readonly recordHit: (key: CacheKey) => Effect.Effect<void>
  /**
   * Synchronous fast paths for a hit served from memory: the key (`undefined` when the
   * parameters need effects, such as paths to hash), and counting the hit at `now`. `null` when
   * the cache's stores have none: the effectful path is then the only one.
   */
  readonly unsafe: {
    /** In `namespace` (default `""`). */
    readonly key: (params: KeyParams, namespace?: string) => CacheKey | undefined
    /** `NotSync` when the hit could not be recorded synchronously (the effectful call then runs). */
    readonly recordHit: (key: CacheKey, now: number) => void | NotSync
  } | null
}

/**
 * The internal part: the configuration the cache was built with and `cached`'s plumbing.
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheInternal {
  readonly config: ResolvedConfig
  readonly memo: MemoSupport
}

/**
 * Attaches the internal part to a service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const attach = (service: Cache.Service, internal: CacheInternal): Cache.Service =>
  Object.defineProperty(service, Internal, { value: internal, enumerable: false })

/**
 * The internal part of a cache built by the engine. A `Cache.Service` written by hand has none:
 * a defect, since only the engine's caches can memoise.
 *
 * @since 0.1.0
 * @category accessors
 */
export const internal = (cache: Cache.Service): CacheInternal => {
  const part = (cache as { readonly [Internal]?: CacheInternal })[Internal]
  if (part === undefined) {
    throw new Error("cacheness: this Cache.Service was not built by Cache.layer or Cache.layerFromServices")
  }
  return part
}
