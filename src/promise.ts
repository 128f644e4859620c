/**
 * The Promise facade: the same cache for plain async TypeScript. Each call runs one effect on a
 * runtime built once, on first use; failures reject with the same typed error objects.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { cached, type CachedInfo, type CachedOptions, memoHitOf } from "./cache/cached.js"
import { tierOf, unsafePutOf } from "./cache/internal.js"
import { layer as cacheLayer, layerConfig, s3FromEnvironment } from "./cache/layer.js"
import * as MemoryTier from "./cache/memoryTier.js"
import {
  Cache,
  type CacheError,
  ConfigError,
  type GetOptions,
  type InvalidateFilter,
  type ListOptions,
  type NamespaceOptions,
  type PruneOptions,
  type PruneResult,
  type PutManyEntry,
  type PutOptions,
  type StatsOptions,
  type VerifyOptions
} from "./cache/service.js"
import type { CacheConfig } from "./schema/CacheConfig.js"
import type { CacheEntry, CacheStats, IntegrityReport } from "./schema/CacheEntry.js"
import type { CacheKey, KeyInput, KeyParams } from "./schema/CacheKey.js"
import type { MetadataFilter, MetadataTable, QueryMetadataOptions } from "./schema/MetadataTable.js"

/**
 * A cache with a Promise API. Every method mirrors an operation of the `Cache` service.
 *
 * @since 0.1.0
 * @category models
 */
export interface CachenessClient {
  readonly key: (params: KeyParams, options?: NamespaceOptions) => Promise<CacheKey>
  readonly put: <A = unknown, I = unknown>(key: KeyInput, value: A, options?: PutOptions<A, I>) => Promise<CacheKey>
  /** The stored value, or `undefined` on a miss. */
  readonly get: <A = unknown, I = unknown>(key: KeyInput, options?: GetOptions<A, I>) => Promise<A | undefined>
  readonly getWithMetadata: <A = unknown, I = unknown>(
    key: KeyInput,
    options?: GetOptions<A, I>
  ) => Promise<{ readonly value: A; readonly entry: CacheEntry; readonly stale: boolean } | undefined>
  readonly has: (key: KeyInput, options?: NamespaceOptions) => Promise<boolean>
  readonly touch: (key: KeyInput, ttl?: Duration.DurationInput | null, options?: NamespaceOptions) => Promise<boolean>
  readonly invalidate: (key: KeyInput, options?: NamespaceOptions) => Promise<boolean>
  /** The values of many keys in their order, `undefined` for a miss (one metadata query). */
  readonly getMany: <A = unknown, I = unknown>(
    keys: Iterable<KeyInput>,
    options?: GetOptions<A, I>
  ) => Promise<ReadonlyArray<A | undefined>>
  /** Stores many values in one transaction (all or none); their keys in order. */
  readonly putMany: (entries: Iterable<PutManyEntry>) => Promise<ReadonlyArray<CacheKey>>
  readonly invalidateMany: (keys: Iterable<KeyInput>) => Promise<number>
  /** Removes every entry carrying any of these tags; how many. */
  readonly invalidateTags: (tags: ReadonlyArray<string>) => Promise<number>
  readonly invalidateWhere: (filter: InvalidateFilter) => Promise<number>
  readonly clear: () => Promise<number>
  readonly cleanupExpired: () => Promise<number>
  readonly list: (options?: ListOptions) => Promise<ReadonlyArray<CacheEntry>>
  readonly stats: (options?: StatsOptions) => Promise<CacheStats>
  readonly verify: (options?: VerifyOptions) => Promise<IntegrityReport>
  readonly prune: (target: number | string, options?: PruneOptions) => Promise<PruneResult>
  /** Live entries with their row in a registered custom metadata table, filtered on its columns. */
  readonly queryMetadata: <A, I>(
    table: MetadataTable<A, I>,
    filter?: MetadataFilter<A>,
    options?: Omit<QueryMetadataOptions<A>, "where">
  ) => Promise<ReadonlyArray<{ readonly entry: CacheEntry; readonly row: A }>>
  /**
   * Memoises an async function in this cache, with the semantics of `cached`: the key is the
   * name and the arguments, TTL from when the value is stored, rejections not stored unless
   * `cacheFailures`, one computation per key across concurrent calls and processes.
   */
  readonly memoize: <Args extends ReadonlyArray<any>, A>(
    fn: (...args: Args) => Promise<A>,
    options?: MemoizeOptions<Args, NoInfer<A>>
  ) => Memoized<Args, A>
  /** Runs any effect that needs the cache on this client's runtime. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Cache>) => Promise<A>
  /** Flushes batched statistics, stops housekeeping and closes the store. */
  readonly close: () => Promise<void>
}

/**
 * Options of `memoize` and `@memoized`: those of `cached`, the failure being whatever the
 * function rejects with.
 *
 * @since 0.1.0
 * @category models
 */
export type MemoizeOptions<Args extends ReadonlyArray<any> = ReadonlyArray<any>, A = any> = CachedOptions<
  Args,
  A,
  unknown
>

/**
 * A memoised async function; `await fn.info()` and `await fn.clear()`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Memoized<Args extends ReadonlyArray<any>, A> {
  (...args: Args): Promise<A>
  readonly info: () => Promise<CachedInfo>
  readonly clear: () => Promise<number>
  readonly namespace: string
}

/** The clock of the facade's runtime (the default, live one), read without an effect. */
const liveClock = Clock.make()

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
  /** The cache's memory tier, once the service is known (`null`: none). */
  let tier: ReturnType<typeof tierOf> | undefined
  /** The synchronous put of the cache, once the service is known (`null`: none). */
  let putSync: ReturnType<typeof unsafePutOf> | undefined
  /** The clock of the runtime's fibers (the live one unless the layer sets another). */
  let clock: Clock.Clock = liveClock
  const ready = (): Promise<Cache.Service> =>
    service !== undefined
      ? Promise.resolve(service)
      : runtime.runPromiseExit(Effect.zip(Cache, Effect.clock)).then((exit) => {
        const [cache, runtimeClock] = settle(exit)
        clock = runtimeClock
        return (service = cache)
      })
  const call = <A, E>(f: (cache: Cache.Service) => Effect.Effect<A, E>): Promise<A> =>
    service !== undefined
      ? runtime.runPromiseExit(f(service)).then(settle)
      : ready().then((cache) => runtime.runPromiseExit(f(cache))).then(settle)
  /**
   * Like `call`, for the short hot operations (get, put, has…): run synchronously as far as the
   * effect goes without waiting — a hit on inline data completes there, skipping the promise
   * round trip of `runPromiseExit` (~5 µs) — and if it went asynchronous (a blob, a write that
   * waits), await the same fiber rather than start another.
   */
  const callFast = <A, E>(f: (cache: Cache.Service) => Effect.Effect<A, E>): Promise<A> =>
    service === undefined ? call(f) : runFast(f(service))
  const runFast = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => {
    const exit = runtime.runSyncExit(effect)
    if (Exit.isSuccess(exit)) return Promise.resolve(exit.value)
    const defect = Cause.dieOption(exit.cause)
    if (Option.isSome(defect) && Runtime.isAsyncFiberException(defect.value)) {
      return runtime.runPromise(Fiber.await(defect.value.fiber as Fiber.RuntimeFiber<A, E>)).then(settle)
    }
    return Promise.reject(Cause.squash(exit.cause))
  }

  /**
   * Like `runFast` for a memoised call, which on a miss always goes asynchronous (the function
   * is awaited): the fiber runs synchronously as far as it goes, and a fiber still running is
   * awaited through an observer — not the `AsyncFiberException` (an `Error` with its stack) and
   * second fiber of `runSyncExit` then `runPromise(Fiber.await)`, ~20 µs of a miss. The runtime
   * provides `Cache` (the service the facade holds is the runtime's own), so a call needs no
   * `Effect.provideService`, which swaps the fiber's context in and out around the call.
   */
  const runForked = <A, E>(effect: Effect.Effect<A, E, Cache>): Promise<A> => {
    const fiber = runtime.runFork(effect)
    const exit = fiber.unsafePoll()
    if (exit !== null) {
      return Exit.isSuccess(exit)
        ? Promise.resolve(exit.value)
        : Promise.reject(Cause.squash(exit.cause))
    }
    return new Promise<A>((resolve, reject) =>
      fiber.addObserver((exit) => Exit.isSuccess(exit) ? resolve(exit.value) : reject(Cause.squash(exit.cause)))
    )
  }

  const memoize = <Args extends ReadonlyArray<any>, A>(
    fn: (...args: Args) => Promise<A>,
    options?: MemoizeOptions<Args, A>
  ): Memoized<Args, A> => {
    const name = options?.name ?? fn.name
    // A rejection is the function's typed failure, whatever it is: `cached` stores it only when asked.
    const lifted = (...args: Args) => Effect.tryPromise({ try: () => fn(...args), catch: (error) => error })
    const memoised = cached(lifted, { ...options, name } as CachedOptions<Args, A, unknown>)
    const { callKeyed, lookup } = memoHitOf(memoised)
    const call = ((...args: Args) => {
      if (service !== undefined) {
        // A hit held in memory needs no fiber at all.
        const hit = lookup(service, args, liveClock.unsafeCurrentTimeMillis())
        if (hit !== undefined && typeof hit !== "string" && hit._tag !== "Missed") {
          return Exit.isSuccess(hit)
            ? Promise.resolve(hit.value)
            : Promise.reject(Cause.squash(hit.cause))
        }
        // Other hits complete synchronously; a miss goes asynchronous and is awaited. The key
        // the lookup derived is not derived again.
        return runForked(hit === undefined ? memoised(...args) : callKeyed(service, args, hit))
      }
      return ready().then(() => runtime.runPromiseExit(memoised(...args))).then(settle)
    }) as Memoized<Args, A>
    Object.defineProperties(call, {
      info: { value: () => runtime.runPromiseExit(memoised.info).then(settle) },
      clear: { value: () => runtime.runPromiseExit(memoised.clear).then(settle) },
      namespace: { value: memoised.namespace },
      name: { value: name }
    })
    return call
  }

  return {
    memoize,
    key: (params, options) => callFast((c) => c.key(params, options)),
    put: (key, value, options) => {
      if (service !== undefined) {
        if (putSync === undefined) putSync = unsafePutOf(service)
        // A small put written synchronously needs no fiber (~6–10 µs of a ~55 µs put, measured).
        if (putSync !== null) {
          let done: ReturnType<typeof putSync>
          try {
            done = putSync(key, value, options, clock.unsafeCurrentTimeMillis())
          } catch (defect) {
            // As the fiber would report it: a rejection, never a synchronous throw.
            return Promise.reject(defect)
          }
          return typeof done === "string" ? Promise.resolve(done) : runFast(done)
        }
      }
      return callFast((c) => c.put(key, value, options))
    },
    get: <A, I>(key: KeyInput, options?: GetOptions<A, I>) => {
      // A memory-tier hit needs no fiber at all.
      if (service !== undefined) {
        if (tier === undefined) tier = tierOf(service)
        if (tier !== null) {
          const hit = tier.unsafeGet(key, options, liveClock.unsafeCurrentTimeMillis())
          if (hit !== MemoryTier.Unanswered) return Promise.resolve(hit as A)
        }
      }
      return callFast((c) =>
        Effect.map(options === undefined ? c.get(key) : c.get(key, options), Option.getOrUndefined)
      ) as Promise<A | undefined>
    },
    getWithMetadata: <A, I>(key: KeyInput, options?: GetOptions<A, I>) =>
      callFast((c) =>
        Effect.map(
          options === undefined ? c.getWithMetadata(key) : c.getWithMetadata(key, options),
          Option.getOrUndefined
        )
      ) as Promise<
        { readonly value: A; readonly entry: CacheEntry; readonly stale: boolean } | undefined
      >,
    has: (key, options) => callFast((c) => c.has(key, options)),
    touch: (key, ttl, options) => callFast((c) => c.touch(key, ttl, options)),
    invalidate: (key, options) => callFast((c) => c.invalidate(key, options)),
    getMany: <A, I>(keys: Iterable<KeyInput>, options?: GetOptions<A, I>) =>
      call((c) =>
        Effect.map(
          options === undefined ? c.getMany(keys) : c.getMany(keys, options),
          (found) => found.map(Option.getOrUndefined)
        )
      ) as Promise<ReadonlyArray<A | undefined>>,
    putMany: (entries) => call((c) => c.putMany(entries)),
    invalidateMany: (keys) => call((c) => c.invalidateMany(keys)),
    invalidateTags: (tags) => call((c) => c.invalidateTags(tags)),
    invalidateWhere: (filter) => call((c) => c.invalidateWhere(filter)),
    clear: () => call((c) => c.clear()),
    cleanupExpired: () => call((c) => c.cleanupExpired()),
    // Synchronous on SQLite, JSON and memory: a `stats()` is one counters row (~3 µs), and the
    // promise round trip and fiber start of `call` cost it several times that.
    list: (options) => callFast((c) => c.list(options)),
    stats: (options) => callFast((c) => c.stats(options)),
    verify: (options) => call((c) => c.verify(options)),
    prune: (target, options) => call((c) => c.prune(target, options)),
    queryMetadata: (table, filter, options) => call((c) => c.queryMetadata(table, filter, options)),
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
export const cacheness = (options?: CachenessOptions): CachenessClient => {
  const { logLevel, ...config } = options ?? {}
  const opened = Layer.unwrapEffect(Effect.gen(function*() {
    const level = yield* logLevelOf(logLevel)
    // Like `CacheLive`, the CLI and `memoize`: an unset directory falls back to `CACHENESS_DIR`.
    const directory = config.directory !== undefined
      ? Option.none()
      : yield* Effect.orElseSucceed(Config.option(Config.string("CACHENESS_DIR")), () => Option.none<string>())
    // And unset `s3` settings fall back to the `CACHENESS_S3_*` variables (given ones win).
    const fromEnv = yield* s3FromEnvironment(undefined)
    const s3 = fromEnv === undefined ? config.s3 : { ...fromEnv, ...config.s3 }
    const withS3 = s3 === undefined ? config : { ...config, s3 }
    const layer = cacheLayer(
      Option.isSome(directory) ? { ...withS3, directory: directory.value } : withS3 as CacheConfig
    )
    // The level first, so fibers the cache forks while it opens (housekeeping) inherit it.
    return Layer.provideMerge(layer, Logger.minimumLogLevel(level))
  }))
  return fromLayer(opened)
}

/**
 * The configuration of `cacheness()`: a `CacheConfig`, plus the least severe level the library
 * logs at (default `"Info"`, which shows warnings and hides routine `"Debug"` lines).
 *
 * @since 0.1.0
 * @category models
 */
export type CachenessOptions = CacheConfig & { readonly logLevel?: LogLevel.Literal | undefined }

const logLevelOf = (literal: unknown): Effect.Effect<LogLevel.LogLevel, ConfigError> => {
  if (literal === undefined) return Effect.succeed(LogLevel.Info)
  const level = LogLevel.allLevels.find((l) => l._tag === literal)
  return level !== undefined ? Effect.succeed(level) : Effect.fail(
    new ConfigError({
      reason: "Invalid",
      field: "logLevel",
      description: `expected one of ${LogLevel.allLevels.map((l) => JSON.stringify(l._tag)).join(", ")}, got ${
        JSON.stringify(literal)
      }`
    })
  )
}

let defaultClient: CachenessClient | undefined
/** The cache `memoize` and `@memoized` use unless given one: `CacheLive`, opened on first use. */
const defaultCache = (): CachenessClient => (defaultClient ??= fromLayer(layerConfig()))

/**
 * Memoises an async function in the default cache (`CACHENESS_DIR`, else `./.cacheness`), or
 * in `options.cache`. Same semantics as `cache.memoize` and `cached`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const memoize = <Args extends ReadonlyArray<any>, A>(
  fn: (...args: Args) => Promise<A>,
  options?: MemoizeOptions<Args, NoInfer<A>> & { readonly cache?: CachenessClient | undefined }
): Memoized<Args, A> => {
  let target: Memoized<Args, A> | undefined
  // The default cache is opened on the first call, not when a module declares a memoised function.
  // `cache` is this function's own option: `cached` refuses fields it does not know.
  const { cache, ...memoOptions } = options ?? {}
  const resolve =
    () => (target ??= (cache ?? defaultCache()).memoize(fn, memoOptions as MemoizeOptions<Args, NoInfer<A>>))
  const name = options?.name ?? fn.name
  const call = ((...args: Args) => resolve()(...args)) as Memoized<Args, A>
  Object.defineProperties(call, {
    info: { value: () => resolve().info() },
    clear: { value: () => resolve().clear() },
    namespace: { value: `cached:${name}` },
    name: { value: name }
  })
  return call
}

/**
 * A TypeScript 5 (standard) method decorator: `@memoized({ ttl: "1 hour" })`. The name defaults
 * to the method's name; the key is the arguments only (not `this`): give `key` or `name` when
 * instances differ. `Class.prototype.method.info()` and `.clear()` reach the memoised function.
 *
 * @since 0.1.0
 * @category constructors
 */
export const memoized = <A>(
  options?: MemoizeOptions<any, A> & { readonly cache?: CachenessClient | undefined }
) =>
<This, Args extends ReadonlyArray<any>>(
  method: (this: This, ...args: Args) => Promise<A>,
  context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => Promise<A>>
): Memoized<Args, A> & ((this: This, ...args: Args) => Promise<A>) => {
  const name = options?.name ?? String(context.name)
  const key = options?.key
  // `this` travels as an argument left out of the key, so concurrent calls on several
  // instances each run on their own receiver.
  const inner = memoize((self: This, ...args: Args) => method.call(self, ...args), {
    ...options,
    name,
    key: (_self: This, ...args: Args) => key !== undefined ? key(...args) : { args }
  } as MemoizeOptions<[This, ...Args], A>)
  const replacement = function(this: This, ...args: Args) {
    return inner(this, ...args)
  } as Memoized<Args, A> & ((this: This, ...args: Args) => Promise<A>)
  Object.defineProperties(replacement, {
    info: { value: inner.info },
    clear: { value: inner.clear },
    namespace: { value: inner.namespace },
    name: { value: name }
  })
  return replacement
}
