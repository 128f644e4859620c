/**
 * The Promise facade: the same cache for plain async TypeScript. Each call runs one effect on a
 * runtime built once, on first use; failures reject with the same typed error objects.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { layer as cacheLayer } from "./layers/CacheLayer.js"
import type { CacheConfig } from "./schema/CacheConfig.js"
import type { CacheEntry, CacheStats, IntegrityReport } from "./schema/CacheEntry.js"
import type { CacheKey, KeyInput, KeyParams } from "./schema/CacheKey.js"
import {
  Cache,
  type CacheError,
  type GetOptions,
  type InvalidateFilter,
  type ListOptions,
  type PruneOptions,
  type PruneResult,
  type PutOptions,
  type VerifyOptions
} from "./services/Cache.js"

/**
 * A cache with a Promise API. Every method mirrors an operation of the `Cache` service.
 *
 * @since 0.1.0
 * @category models
 */
export interface CachenessClient {
  readonly key: (params: KeyParams) => Promise<CacheKey>
  readonly put: <A = unknown, I = unknown>(key: KeyInput, value: A, options?: PutOptions<A, I>) => Promise<CacheKey>
  /** The stored value, or `undefined` on a miss. */
  readonly get: <A = unknown, I = unknown>(key: KeyInput, options?: GetOptions<A, I>) => Promise<A | undefined>
  readonly getWithMetadata: <A = unknown, I = unknown>(
    key: KeyInput,
    options?: GetOptions<A, I>
  ) => Promise<{ readonly value: A; readonly entry: CacheEntry } | undefined>
  readonly has: (key: KeyInput) => Promise<boolean>
  readonly touch: (key: KeyInput, ttl?: Duration.DurationInput | null) => Promise<boolean>
  readonly invalidate: (key: KeyInput) => Promise<boolean>
  readonly invalidateWhere: (filter: InvalidateFilter) => Promise<number>
  readonly clear: () => Promise<number>
  readonly cleanupExpired: () => Promise<number>
  readonly list: (options?: ListOptions) => Promise<ReadonlyArray<CacheEntry>>
  readonly stats: () => Promise<CacheStats>
  readonly verify: (options?: VerifyOptions) => Promise<IntegrityReport>
  readonly prune: (target: number | string, options?: PruneOptions) => Promise<PruneResult>
  /** Runs any effect that needs the cache on this client's runtime. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Cache>) => Promise<A>
  /** Flushes batched statistics, stops housekeeping and closes the store. */
  readonly close: () => Promise<void>
}

const settle = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

/**
 * Wraps a layer providing `Cache` as a Promise client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromLayer = (layer: Layer.Layer<Cache, CacheError>): CachenessClient => {
  const runtime = ManagedRuntime.make(layer)
  let service: Cache.Service | undefined
  const ready = (): Promise<Cache.Service> =>
    service !== undefined
      ? Promise.resolve(service)
      : runtime.runPromiseExit(Cache).then((exit) => (service = settle(exit)))
  const call = <A, E>(f: (cache: Cache.Service) => Effect.Effect<A, E>): Promise<A> =>
    service !== undefined
      ? runtime.runPromiseExit(f(service)).then(settle)
      : ready().then((cache) => runtime.runPromiseExit(f(cache))).then(settle)

  return {
    key: (params) => call((c) => c.key(params)),
    put: (key, value, options) => call((c) => c.put(key, value, options)),
    get: <A, I>(key: KeyInput, options?: GetOptions<A, I>) =>
      call((c) => Effect.map(c.get(key, options ?? {}), Option.getOrUndefined)) as Promise<A | undefined>,
    getWithMetadata: <A, I>(key: KeyInput, options?: GetOptions<A, I>) =>
      call((c) => Effect.map(c.getWithMetadata(key, options ?? {}), Option.getOrUndefined)) as Promise<
        { readonly value: A; readonly entry: CacheEntry } | undefined
      >,
    has: (key) => call((c) => c.has(key)),
    touch: (key, ttl) => call((c) => c.touch(key, ttl)),
    invalidate: (key) => call((c) => c.invalidate(key)),
    invalidateWhere: (filter) => call((c) => c.invalidateWhere(filter)),
    clear: () => call((c) => c.clear()),
    cleanupExpired: () => call((c) => c.cleanupExpired()),
    list: (options) => call((c) => c.list(options)),
    stats: () => call((c) => c.stats()),
    verify: (options) => call((c) => c.verify(options)),
    prune: (target, options) => call((c) => c.prune(target, options)),
    run: (effect) => runtime.runPromiseExit(effect).then(settle),
    close: () => runtime.dispose()
  }
}

/**
 * Opens a cache with a Promise API: `cacheness({ directory: "./my_cache" })`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const cacheness = (config?: CacheConfig): CachenessClient => fromLayer(cacheLayer(config))
