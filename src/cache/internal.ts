/**
 * What the engine hands its own parts beyond the public operations (the resolved configuration
 * and the plumbing of `cached`), behind a symbol so `Cache.Service` shows operations only.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { CacheError } from "../errors.js"
import type { StoredValue } from "../metadata/service.js"
import type { CacheKey, KeyInput, KeyParams } from "../schema/CacheKey.js"
import type { NotSync } from "../shared/sync.js"
import type { Cache, GetOptions, PutOptions, ResolvedConfig } from "./service.js"

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
  /**
   * Like `get` (counts a hit or a miss), with the entry's expiry and end of grace (epoch ms,
   * `null` never) and whether it was served stale (only with `allowStale`).
   */
  readonly read: <A, I>(
    key: CacheKey,
    options: GetOptions<A, I>
  ) => Effect.Effect<
    Option.Option<
      {
        readonly value: A
        readonly expiresAt: number | null
        readonly staleUntil: number | null
        readonly stale: boolean
      }
    >,
    CacheError
  >
  /** Takes or renews the lease on `key` for `holder`, for `duration` ms from now (Clock). */
  readonly acquireLease: (key: CacheKey, holder: string, duration: number) => Effect.Effect<boolean, CacheError>
  /**
   * `acquireLease` at `now` (epoch ms) given by the caller: without the `Clock` service, so a
   * caller on the wall clock needs no `Effect.withClock` (a copy of the fiber's services).
   */
  readonly acquireLeaseAt: (
    key: CacheKey,
    holder: string,
    duration: number,
    now: number
  ) => Effect.Effect<boolean, CacheError>
  /**
   * `acquireLeaseAt`, refused while an entry live at `liveAt` (cache time) is stored under `key`,
   * in one step; `null` when the store has none (take the lease, then read again).
   */
  readonly acquireLeaseIfAbsentAt:
    | ((
      key: CacheKey,
      holder: string,
      duration: number,
      now: number,
      liveAt: number
    ) => Effect.Effect<boolean, CacheError>)
    | null
  /** Gives the lease up if `holder` still holds it. */
  readonly releaseLease: (key: CacheKey, holder: string) => Effect.Effect<void, CacheError>
  /**
   * `put`, also giving up `holder`'s lease on the stored key in the same commit when the store
   * can (`leaseReleased`); otherwise the lease is still held and the caller releases it.
   */
  readonly putReleasing: (
    params: KeyParams,
    value: unknown,
    options: PutOptions<any, any>,
    holder: string
  ) => Effect.Effect<{ readonly key: CacheKey; readonly leaseReleased: boolean }, CacheError>
  /**
   * A number that changes whenever any entry may have changed (in any process), or `undefined`
   * when the store cannot tell: values held in memory must then not be trusted.
   */
  readonly changeCount: () => number | undefined
  /**
   * The expiry of the stored entry (`null` never), `undefined` when there is none; counts no
   * access. A background recomputation compares it with the expiry it saw, so it runs once per
   * version of an entry.
   */
  readonly expiryOf: (key: CacheKey) => Effect.Effect<number | null | undefined, CacheError>
  /**
   * Runs an effect in the background for the cache layer's lifetime: it is interrupted when the
   * layer's scope closes (`close()`).
   */
  readonly fork: <R>(effect: Effect.Effect<void, never, R>) => Effect.Effect<void, never, R>
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
    /**
     * A store read without options at `now`, settled synchronously: a live inline hit (decoded,
     * counted, recorded), `null` for a miss (counted, recorded), or `NotSync` (nothing done: the
     * effectful read then runs).
     */
    readonly read: (
      key: CacheKey,
      now: number
    ) => { readonly value: unknown; readonly record: StoredValue } | null | NotSync
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
  /** The memory tier's synchronous hit (see `cache/memoryTier.ts`); `null` or absent: no tier. */
  readonly tier?: TierSupport | null | undefined
  /**
   * `put` at `now` settled without the effect runtime when it can (a small inline value on a
   * store that writes synchronously): the key, or an effect to run for the rest or the whole.
   */
  readonly unsafePut?: (
    input: KeyInput,
    value: unknown,
    options: PutOptions<any, any> | undefined,
    now: number
  ) => CacheKey | Effect.Effect<CacheKey, CacheError>
}

/**
 * What the Promise facade (and tests) reach of the memory tier.
 *
 * @since 0.1.0
 * @category models
 */
export interface TierSupport {
  /** A hit served from memory at `now` without the effect runtime, or a sentinel symbol: then run `get`. */
  readonly unsafeGet: (input: KeyInput, options: GetOptions<any, any> | undefined, now: number) => unknown
  /** How many values and bytes the tier holds, and how its hits were served. */
  readonly stats: () => {
    readonly entries: number
    readonly bytes: number
    readonly served: number
    readonly revalidated: number
  }
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

/**
 * The memory tier of a cache built by the engine with one, else `null` (no tier, or a
 * `Cache.Service` written by hand).
 *
 * @since 0.1.0
 * @category accessors
 */
export const tierOf = (cache: Cache.Service): TierSupport | null =>
  (cache as { readonly [Internal]?: CacheInternal })[Internal]?.tier ?? null

/**
 * The synchronous `put` of a cache built by the engine (see `CacheInternal.unsafePut`), else `null`.
 *
 * @since 0.1.0
 * @category internal
 */
export const unsafePutOf = (cache: Cache.Service): NonNullable<CacheInternal["unsafePut"]> | null =>
  (cache as { readonly [Internal]?: CacheInternal })[Internal]?.unsafePut ?? null
