/**
 * `cached`: memoises a function returning an Effect in the cache, with typed errors, TTL and
 * single-flight — one computation per key at a time, within a process (a shared `Deferred`) and
 * across processes sharing the cache (a lease row in the metadata store).
 *
 * A call goes, in order, through:
 * 1. the memo: a small in-process map of recent results, trusted only while the store's change
 *    counter has not moved (no staleness: any write to the cache, from any process, invalidates it);
 * 2. the in-flight map: a concurrent call with the same key waits for the running one;
 * 3. the store: a stored value (or stored failure) is decoded and returned;
 * 4. the lease: the one process holding it computes and stores; the others poll the store.
 *
 * Past its TTL an entry stored with grace (`staleWhileRevalidate`, `staleIfError`) can still
 * answer: within `staleWhileRevalidate` at once, while one background recomputation (one per key
 * in this process, and through the lease one across processes) replaces it; within
 * `staleIfError` when the recomputation fails with a typed error. In the last `refreshAhead` of
 * the TTL a hit starts that background recomputation early. The background fibers live in the
 * cache layer's scope.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { goneAt } from "../metadata/service.js"
import type { CacheKey, KeyParams } from "../schema/CacheKey.js"
import * as Validate from "../shared/validate.js"
import { internal } from "./internal.js"
import { isLiveAt } from "./read.js"
import { Cache, type CacheError, ConfigError } from "./service.js"

/** `cached`'s plumbing of a cache built by the engine (leases, change counter, reads with expiry). */
const memoOf = (cache: Cache.Service) => internal(cache).memo
import { NotSync } from "../shared/sync.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface CachedOptions<Args extends ReadonlyArray<any> = ReadonlyArray<any>, A = any, E = any> {
  /** Part of every key and of the namespace `cached:<name>`; required for anonymous functions. */
  readonly name?: string | undefined
  /** Counted from when the value is stored. Default: the cache's `defaultTtl`; `null` never expires. */
  readonly ttl?: Duration.DurationInput | null | undefined
  /** Named parameters to key by instead of the arguments (e.g. to leave a logger out). */
  readonly key?: ((...args: Args) => KeyParams) | undefined
  /**
   * Store typed failures too (never defects or interruptions), replayed as the same failure.
   * The error must be storable: plain data, or give `failureSchema` (a `Schema.TaggedError`
   * class is a schema) — class instances without one are not stored (a warning is logged).
   */
  readonly cacheFailures?: boolean | undefined
  /** TTL of a stored failure. Default: `ttl`. */
  readonly failureTtl?: Duration.DurationInput | null | undefined
  /** Encodes and decodes stored failures. */
  readonly failureSchema?: Schema.Schema<E, any, never> | undefined
  /** Store a value only when this returns true. A throwing condition stores nothing (warning). */
  readonly condition?: ((value: A) => boolean) | undefined
  /** Encodes stored values and validates hits: a hit that does not decode is removed and recomputed. */
  readonly schema?: Schema.Schema<A, any, never> | undefined
  readonly description?: string | undefined
  /**
   * Tags of every stored result (see `put`'s `tags`), or a function of the call's arguments that
   * returns them, so `invalidateTags` can drop results across memoised functions. A function that
   * throws stores nothing (warning); one that returns something other than non-empty strings
   * fails the call with a `ConfigError`.
   */
  readonly tags?: ReadonlyArray<string> | ((...args: Args) => ReadonlyArray<string>) | undefined
  /**
   * How many recent results this process keeps decoded in memory (default 1024; `false` turns
   * the memo off). A result is served from memory only while the metadata store reports no write
   * at all since it was read (SQLite `PRAGMA data_version` plus this process's own writes), so it
   * is never staler than a store read. Memoised values are shared between callers: don't mutate
   * them. Stores that cannot report changes always read through.
   */
  readonly memo?: number | false | undefined
  /**
   * Trade exactness for speed: ask the store whether anything changed at most once per this
   * interval (wall clock) instead of on every hit, saving the ~4 µs of `PRAGMA data_version`.
   * A write made by another process (or another cache object) may then go unseen by memoised
   * hits for up to this long; this function's own `clear` is always seen. Default 0: exact.
   */
  readonly memoRecheck?: Duration.DurationInput | undefined
  /** Share one computation per key across processes through a lease. Default true. */
  readonly lease?: boolean | undefined
  /** How long a lease lasts without renewal (the holder renews it while computing). Default 10 s. */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** How long a call waits for another process's computation before computing itself. Default 5 min. */
  readonly leaseTimeout?: Duration.DurationInput | undefined
  /**
   * For this long after the TTL a call answers at once with the stored (stale) value and starts
   * one recomputation in the background (single-flight in this process and, through the lease,
   * across processes). A failed background recomputation keeps the stale value (warning logged).
   * Default 0: off.
   */
  readonly staleWhileRevalidate?: Duration.DurationInput | undefined
  /**
   * For this long after the TTL a call recomputes, and a typed failure of the recomputation is
   * answered with the stale value (warning logged) instead of surfacing. Past it the failure
   * surfaces. Default 0: off.
   */
  readonly staleIfError?: Duration.DurationInput | undefined
  /**
   * A hit in the last `refreshAhead` of the TTL returns the value and starts one recomputation in
   * the background, so hot keys are replaced before they expire. Default 0: off.
   */
  readonly refreshAhead?: Duration.DurationInput | undefined
}

/**
 * Counters of one memoised function on one cache. `hits` counts calls served without running the
 * function (memory, store, or a concurrent call's result); `misses` counts calls that ran it.
 *
 * @since 0.1.0
 * @category models
 */
export interface CachedInfo {
  readonly hits: number
  readonly misses: number
  /** Entries of this function currently stored (in every process). */
  readonly entries: number
}

/**
 * A memoised function: the original signature, plus `CacheError` and `Cache`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cached<Args extends ReadonlyArray<any>, A, E, R> {
  (...args: Args): Effect.Effect<A, E | CacheError, R | Cache>
  /** Hits and misses in this process, entries in the cache. */
  readonly info: Effect.Effect<CachedInfo, CacheError, Cache>
  /** Removes this function's entries (only them); returns how many. */
  readonly clear: Effect.Effect<number, CacheError, Cache>
  /** The namespace of this function's entries: `cached:<name>`. */
  readonly namespace: string
}

/**
 * What is stored when a `schema` or `failureSchema` is given: a tagged value or typed failure,
 * encoded through the union of both schemas.
 */
type Envelope<A, E> =
  | { readonly _tag: "Success"; readonly value: A }
  | { readonly _tag: "Failure"; readonly error: E }

/**
 * Without schemas a value is stored as itself — so typed arrays and Arrow tables keep their
 * columnar formats — and a typed failure as an object marked with this property.
 */
const FAILURE_MARK = "cacheness/cached-failure@1"

const isMarkedFailure = (u: unknown): u is { readonly [FAILURE_MARK]: true; readonly error: unknown } =>
  typeof u === "object" && u !== null && Object.getPrototypeOf(u) === Object.prototype &&
  (u as Record<string, unknown>)[FAILURE_MARK] === true

interface MemoEntry {
  readonly exit: Exit.Exit<any, any>
  readonly change: number
  readonly expiresAt: number | null
  /** End of the entry's grace (`null` never). */
  readonly staleUntil: number | null
}

/** A stored result as the read found it. */
interface Found<A, E> {
  readonly exit: Exit.Exit<A, E>
  readonly expiresAt: number | null
  readonly staleUntil: number | null
  readonly stale: boolean
}

/**
 * What a call does with a result it holds: `Serve` it, serve it and start a background
 * recomputation (`Revalidate`: stale within `staleWhileRevalidate`, or fresh within
 * `refreshAhead`), recompute answering a typed failure with it (`ServeOnError`: within
 * `staleIfError`), or treat it as a miss (`Load`).
 */
type Plan = "Serve" | "Revalidate" | "ServeOnError" | "Load"

interface State {
  hits: number
  misses: number
  /** With `memoRecheck`: the change count last read, and when (wall-clock ms). */
  change: number | undefined
  checkedAt: number
  readonly memo: Map<CacheKey, MemoEntry>
}

/** A lease this call holds: `released` once a put gave it up in its own commit. */
interface Held {
  readonly holder: string
  released: boolean
  /** A renewal was in flight when the store freed the lease, and may have taken it again. */
  renewedAfterRelease: boolean
}

/** Keys being recomputed in the background per cache: one recomputation per key in the process. */
const refreshing = new WeakMap<Cache.Service, Set<CacheKey>>()

const refreshingOf = (cache: Cache.Service) => {
  let set = refreshing.get(cache)
  if (set === undefined) refreshing.set(cache, set = new Set())
  return set
}

/**
 * A call in flight: the `Deferred` its waiters share, made by the first of them. Most calls have
 * none, and a `Deferred` is not free to make: it copies the effect prototype's fields (~2.5 µs
 * each, measured, against a plain record's 0.02).
 */
interface Running {
  waiters: Deferred.Deferred<any, any> | undefined
}

/** Calls in flight per cache and key, shared by every memoised function of the process. */
const inFlight = new WeakMap<Cache.Service, Map<CacheKey, Running>>()

const inFlightOf = (cache: Cache.Service) => {
  let map = inFlight.get(cache)
  if (map === undefined) inFlight.set(cache, map = new Map())
  return map
}

let holderCounter = 0
/** Identifies one computation across processes. */
const holderId = (): string =>
  `${process.pid}-${(holderCounter++).toString(36)}-${Math.floor(Math.random() * 36 ** 6).toString(36)}`

/** Leases are about wall-clock coordination between processes, not cache time (TestClock). */
const wallClock = Clock.make()

/**
 * Where a memoised function keeps its synchronous memory-hit lookup and its call by a key already
 * derived, for the Promise facade. Not part of the public API.
 *
 * @internal
 */
export const unsafeMemoHit: unique symbol = Symbol.for("cacheness/cached/unsafeMemoHit")

/**
 * What the synchronous lookup answers: the stored `Exit` of a live hit held in memory, else the
 * call's key when it could be derived synchronously (hand it to `callKeyed`, which then derives
 * it no more), else `undefined` (run the memoised function as usual).
 *
 * @internal
 */
export type MemoLookup<A, E> = Exit.Exit<A, E> | CacheKey | Missed | undefined

/**
 * A call's key that a synchronous store read just found nothing under (the miss counted): the
 * call computes without reading again.
 *
 * @internal
 */
export interface Missed {
  readonly _tag: "Missed"
  readonly key: CacheKey
}

/**
 * What `memoHitOf` finds on a function `cached` returned.
 *
 * @internal
 */
export interface MemoHit<Args extends ReadonlyArray<any>, A, E, R> {
  readonly lookup: (cache: Cache.Service, args: Args, now: number) => MemoLookup<A, E>
  readonly callKeyed: (cache: Cache.Service, args: Args, key: CacheKey | Missed) => Effect.Effect<A, E | CacheError, R>
}

/**
 * The synchronous memory-hit lookup of a function `cached` returned, and its call with the key
 * the lookup derived.
 *
 * @internal
 */
export const memoHitOf = <Args extends ReadonlyArray<any>, A, E, R>(
  memoised: Cached<Args, A, E, R>
): MemoHit<Args, A, E, R> =>
  (memoised as unknown as Record<typeof unsafeMemoHit, MemoHit<Args, A, E, R>>)[unsafeMemoHit]

/**
 * Renews a lease every `every` ms while its computation runs, on a plain unref'd interval rather
 * than a forked fiber: forking and interrupting a sleeping fiber costs ~100 µs of CPU here, more
 * than taking the lease, and an unref'd interval never keeps the process alive. The renewal runs
 * with the computing fiber's context and refs, taken when it is due (`getFiberRefs` copies the
 * fiber's refs, and most computations end before the first renewal). The returned effect stops
 * it and waits for a renewal in flight, so no renewal lands after the release.
 */
const startHeartbeat = (
  computing: Fiber.RuntimeFiber<unknown, unknown>,
  renew: () => Effect.Effect<void>,
  every: number
): Effect.Effect<void> => {
  let inFlight: Fiber.RuntimeFiber<void> | undefined
  const timer = setInterval(() => {
    if (inFlight === undefined) {
      const runtime = Runtime.make({
        context: computing.currentContext,
        fiberRefs: computing.getFiberRefs(),
        runtimeFlags: Runtime.defaultRuntime.runtimeFlags
      })
      const fiber = Runtime.runFork(runtime)(renew())
      inFlight = fiber
      fiber.addObserver(() => {
        if (inFlight === fiber) inFlight = undefined
      })
    }
  }, every)
  timer.unref()
  return Effect.suspend(() => {
    clearInterval(timer)
    return inFlight === undefined ? Effect.void : Effect.asVoid(Fiber.await(inFlight))
  })
}

const Pending = Symbol.for("cacheness/cached/Pending")
/** This call now holds the lease. */
const Acquired = Symbol.for("cacheness/cached/Acquired")
/** This call now holds the lease, taken while nothing live was stored under the key. */
const Checked = Symbol.for("cacheness/cached/Checked")

const toMillis = (field: string, input: Duration.DurationInput | null | undefined, fallback: number | null) => {
  if (input === undefined) return Either.right(fallback)
  if (input === null) return Either.right(null)
  const decoded = Duration.decodeUnknown(input)
  return Option.isSome(decoded)
    ? Either.right(Duration.toMillis(decoded.value))
    : Either.left(
      new ConfigError({ reason: "Invalid", field: `cached.${field}`, description: `not a duration: ${String(input)}` })
    )
}

/** Every option of `cached` (and `memoize`): any other field is a `ConfigError`. */
const CACHED_FIELDS = [
  "name",
  "ttl",
  "key",
  "cacheFailures",
  "failureTtl",
  "failureSchema",
  "condition",
  "schema",
  "description",
  "tags",
  "memo",
  "memoRecheck",
  "lease",
  "leaseTtl",
  "leaseTimeout",
  "staleWhileRevalidate",
  "staleIfError",
  "refreshAhead"
] as const

/** A window of the stale options: a finite duration in ms (0 when not given), or the error. */
const windowOf = (field: string, input: unknown): number | ConfigError => {
  const millis = Validate.duration(`cached.${field}`, input)
  if (millis instanceof ConfigError) return millis
  if (millis === undefined) return 0
  return millis === null || !Number.isFinite(millis)
    ? new ConfigError({
      reason: "Invalid",
      field: `cached.${field}`,
      description: `must be a finite duration, got ${Validate.show(input)}`
    })
    : millis
}

const make = <Args extends ReadonlyArray<any>, A, E, R>(
  f: (...args: Args) => Effect.Effect<A, E, R>,
  options: CachedOptions<Args, A, E> = {}
): Cached<Args, A, E, R> => {
  const name = options.name ?? f.name
  const namespace = `cached:${name}`
  const memoSize = options.memo === false ? 0 : options.memo ?? 1024
  const useLease = options.lease !== false

  // Bad options fail every call with a typed error rather than throwing at definition.
  let invalid: ConfigError | undefined
  const check = <T>(e: Either.Either<T, ConfigError>, fallback: T): T => {
    if (Either.isLeft(e)) {
      invalid ??= e.left
      return fallback
    }
    return e.right
  }
  if (name === "") {
    invalid = new ConfigError({
      reason: "Invalid",
      field: "cached.name",
      description: "the function is anonymous: give options.name"
    })
  }
  const known = Validate.options("cached", options, CACHED_FIELDS)
  if (known instanceof ConfigError) invalid ??= known
  for (const field of ["ttl", "failureTtl"] as const) {
    // Before the put's own check, so a bad TTL fails the call before the function runs.
    const ttl = known instanceof ConfigError ? undefined : Validate.ttl(`cached.${field}`, known[field])
    if (ttl instanceof ConfigError) invalid ??= ttl
  }
  if (typeof options.tags !== "function") {
    const tags = Validate.optionalTags("cached.tags", options.tags)
    if (tags instanceof ConfigError) invalid ??= tags
  }
  const leaseTtl = check(toMillis("leaseTtl", options.leaseTtl, 10_000), 10_000) ?? 10_000
  const leaseTimeout = check(toMillis("leaseTimeout", options.leaseTimeout, 300_000), 300_000) ?? 300_000
  const memoRecheck = check(toMillis("memoRecheck", options.memoRecheck, 0), 0) ?? 0
  const windows = { staleWhileRevalidate: 0, staleIfError: 0, refreshAhead: 0 }
  for (const field of ["staleWhileRevalidate", "staleIfError", "refreshAhead"] as const) {
    const millis = windowOf(field, options[field])
    if (millis instanceof ConfigError) invalid ??= millis
    else windows[field] = millis
  }
  const { refreshAhead, staleIfError, staleWhileRevalidate } = windows
  /** Grace of stored values: the stale entry must outlive both windows. */
  const grace = Math.max(staleWhileRevalidate, staleIfError)
  if (memoSize !== 0 && !(Number.isInteger(memoSize) && memoSize > 0)) {
    invalid ??= new ConfigError({
      reason: "Invalid",
      field: "cached.memo",
      description: `must be a positive integer or false, got ${String(options.memo)}`
    })
  }

  const schema: Schema.Schema<Envelope<A, E>, any, never> | undefined =
    options.schema === undefined && options.failureSchema === undefined
      ? undefined
      : Schema.Union(
        Schema.TaggedStruct("Success", { value: options.schema ?? (Schema.Unknown as Schema.Schema<any>) }),
        Schema.TaggedStruct("Failure", { error: options.failureSchema ?? (Schema.Unknown as Schema.Schema<any>) })
      ) as any
  // Stale entries are read only when a window can serve them.
  const getOptions = grace > 0 ? { schema, allowStale: true } : { schema }
  const successPut = {
    ttl: options.ttl,
    namespace,
    schema,
    description: options.description,
    grace: grace > 0 ? grace : undefined
  }
  const failurePut = {
    ttl: options.failureTtl === undefined ? options.ttl : options.failureTtl,
    namespace,
    schema,
    description: options.description
  }

  const states = new WeakMap<Cache.Service, State>()
  const stateOf = (cache: Cache.Service): State => {
    let state = states.get(cache)
    if (state === undefined) {
      states.set(
        cache,
        state = { hits: 0, misses: 0, change: undefined, checkedAt: Number.NEGATIVE_INFINITY, memo: new Map() }
      )
    }
    return state
  }

  const paramsOf = (args: Args): KeyParams => {
    if (options.key !== undefined) return { fn: name, key: options.key(...args) }
    // f(1) and f(1, undefined) are the same call.
    let n = args.length
    while (n > 0 && args[n - 1] === undefined) n--
    return { fn: name, args: n === args.length ? args : args.slice(0, n) }
  }

  /** The store's change count, read at most once per `memoRecheck`. */
  const changeCount = (cache: Cache.Service, state: State): number | undefined => {
    if (memoRecheck === 0) return memoOf(cache).changeCount()
    const at = wallClock.unsafeCurrentTimeMillis()
    if (at - state.checkedAt >= memoRecheck) {
      state.change = memoOf(cache).changeCount()
      state.checkedAt = at
    }
    return state.change
  }

  const remember = (
    state: State,
    key: CacheKey,
    exit: Exit.Exit<A, E>,
    change: number | undefined,
    expiresAt: number | null,
    staleUntil: number | null
  ) => {
    if (memoSize === 0 || change === undefined) return
    state.memo.delete(key)
    state.memo.set(key, { exit, change, expiresAt, staleUntil })
    if (state.memo.size > memoSize) state.memo.delete(state.memo.keys().next().value!)
  }

  const toStored = (exit: Exit.Exit<A, E>): any => {
    if (Exit.isSuccess(exit)) return schema === undefined ? exit.value : { _tag: "Success", value: exit.value }
    const error = (exit.cause as Cause.Fail<E>).error
    return schema === undefined ? { [FAILURE_MARK]: true, error } : { _tag: "Failure", error }
  }

  const fromStored = (stored: unknown): Exit.Exit<A, E> => {
    if (schema === undefined) return isMarkedFailure(stored) ? Exit.fail(stored.error as E) : Exit.succeed(stored as A)
    const envelope = stored as Envelope<A, E>
    return envelope._tag === "Success" ? Exit.succeed(envelope.value) : Exit.fail(envelope.error)
  }

  /**
   * What a call does with a result expiring at `expiresAt` (not `null`), its grace ending at
   * `staleUntil`, at `now`: the stale windows and refresh-ahead as one table.
   */
  const planAt = (expiresAt: number, staleUntil: number | null, now: number): Plan => {
    if (expiresAt > now) return refreshAhead > 0 && now >= expiresAt - refreshAhead ? "Revalidate" : "Serve"
    if (staleUntil === null || staleUntil <= now) return "Load"
    if (now < expiresAt + staleWhileRevalidate) return "Revalidate"
    if (now < expiresAt + staleIfError) return "ServeOnError"
    return "Load"
  }

  /** The stored result, if any, with its expiry; remembered in memory when the store can report changes. */
  /** The change count to remember a value just read with (read before the read). */
  const changeForRead = (cache: Cache.Service, state: State): number | undefined => {
    // Without a memo nothing is remembered: no change count to read (~5 µs on SQLite).
    if (memoSize === 0) return undefined
    if (memoRecheck === 0) return memoOf(cache).changeCount()
    state.checkedAt = wallClock.unsafeCurrentTimeMillis()
    return state.change = memoOf(cache).changeCount()
  }

  const readFound = (cache: Cache.Service, state: State, key: CacheKey) => {
    const change = changeForRead(cache, state)
    return Effect.map(memoOf(cache).read(key, getOptions as any), (found) => {
      if (Option.isNone(found)) return Option.none<Found<A, E>>()
      const { expiresAt, stale, staleUntil } = found.value
      const exit = fromStored(found.value.value)
      remember(state, key, exit, change, expiresAt, staleUntil)
      return Option.some<Found<A, E>>({ exit, expiresAt, staleUntil, stale })
    })
  }

  /** The stored result, if any. */
  const readStored = (cache: Cache.Service, state: State, key: CacheKey) =>
    Effect.map(readFound(cache, state, key), Option.map((found) => found.exit))

  /** Polling for another process's result must not count misses in the cache's statistics. */
  const readIfPresent = (cache: Cache.Service, state: State, key: CacheKey) =>
    Effect.flatMap(cache.has(key), (present) => present ? readStored(cache, state, key) : Effect.succeed(Option.none()))

  const shouldStore = (value: A) =>
    options.condition === undefined
      ? Effect.succeed(true)
      : Effect.suspend(() => {
        try {
          return Effect.succeed(options.condition!(value) === true)
        } catch (error) {
          return Effect.as(
            Effect.logWarning(`cacheness: ${namespace}: condition threw; value returned, not stored`, error),
            false
          )
        }
      })

  /** The tags of a call's stored result: `undefined` for none, `null` when the tag function threw. */
  const tagsOf = (args: Args): Effect.Effect<ReadonlyArray<string> | undefined | null> => {
    const tags = options.tags
    if (typeof tags !== "function") return Effect.succeed(tags)
    try {
      return Effect.succeed(tags(...args))
    } catch (error) {
      return Effect.as(
        Effect.logWarning(`cacheness: ${namespace}: tags threw; value returned, not stored`, error),
        null
      )
    }
  }

  /**
   * Stores a result; under a lease (`held`) through `putReleasing`, which frees the lease in the
   * same commit when the store can (then `held.released`).
   */
  const storeResult = (cache: Cache.Service, params: KeyParams, stored: unknown, options: any, held?: Held) =>
    held === undefined
      ? Effect.asVoid(cache.put(params, stored, options))
      : Effect.map(memoOf(cache).putReleasing(params, stored, options, held.holder), (written) => {
        if (written.leaseReleased) held.released = true
      })

  /** Stores a successful result when `condition` allows (the tag function runs only then). */
  const storeSuccess = (
    cache: Cache.Service,
    params: KeyParams,
    exit: Exit.Success<A, E>,
    held: Held | undefined,
    args: Args
  ): Effect.Effect<void, CacheError> => {
    const store = (): Effect.Effect<void, CacheError> =>
      typeof options.tags !== "function"
        ? storeTagged(cache, params, exit, options.tags, held)
        : Effect.flatMap(tagsOf(args), (tags) => storeTagged(cache, params, exit, tags, held))
    return options.condition === undefined
      ? store()
      : Effect.flatMap(shouldStore(exit.value), (ok) => ok ? store() : Effect.void)
  }

  const storeTagged = (
    cache: Cache.Service,
    params: KeyParams,
    exit: Exit.Exit<A, E>,
    tags: ReadonlyArray<string> | undefined | null,
    held?: Held
  ): Effect.Effect<void, CacheError> =>
    tags === null
      ? Effect.void
      : storeResult(cache, params, toStored(exit), tags === undefined ? successPut : { ...successPut, tags }, held)

  /**
   * Runs the function and stores what may be stored. Without `Effect.gen`: a miss is a hot path
   * too, and each generator step through the runtime costs ~0.3–1 µs.
   */
  const compute = (
    cache: Cache.Service,
    state: State,
    args: Args,
    params: KeyParams,
    keepStale = false,
    held?: Held
  ): Effect.Effect<Exit.Exit<A, E>, CacheError, R> =>
    Effect.suspend(() => {
      state.misses++
      return Effect.flatMap(Effect.exit(f(...args)), (exit): Effect.Effect<Exit.Exit<A, E>, CacheError> => {
        if (Exit.isSuccess(exit)) return Effect.as(storeSuccess(cache, params, exit, held, args), exit)
        if (options.cacheFailures === true && !keepStale && Cause.isFailType(exit.cause)) {
          // (A recomputation that may answer with a stale value stores no failure over it.)
          return Effect.as(
            Effect.flatMap(tagsOf(args), (tags) =>
              // The caller gets its own failure even when it cannot be stored.
              tags === null ? Effect.void : storeResult(
                cache,
                params,
                toStored(exit),
                tags === undefined ? failurePut : { ...failurePut, tags },
                held
              ).pipe(
                Effect.catchAll((error) =>
                  Effect.logWarning(
                    `cacheness: ${namespace}: typed failure not stored (${error.message}); give failureSchema to store class instances`
                  )
                )
              )),
            exit
          )
        }
        return Effect.succeed(exit)
      })
    })

  /**
   * Computes while holding the lease, renewing it in the background; releases it afterwards.
   * The heartbeat starts in the step that installs its stop (no gap for an interruption), and
   * without `acquireUseRelease`'s extra steps or `Effect.runtime`'s copy of the fiber's refs.
   */
  const computeLeased = <X = Exit.Exit<A, E>>(
    cache: Cache.Service,
    state: State,
    key: CacheKey,
    holder: string,
    args: Args,
    params: KeyParams,
    body?: Effect.Effect<X, CacheError, R>,
    checked = false
  ): Effect.Effect<X, CacheError, R> => {
    // The default body stores its result and frees the lease in one commit where the store can;
    // a lease freed so is neither renewed nor released again.
    const held: Held = { holder, released: false, renewedAfterRelease: false }
    const renew = () =>
      Effect.suspend(() =>
        held.released ? Effect.void : Effect.tap(takeLease(cache, key, holder), () => {
          // Freed with the stored value while this renewal ran: it may have re-taken the
          // lease, so the release below runs after all (a no-op when it did not).
          if (held.released) held.renewedAfterRelease = true
        })
      ).pipe(
        Effect.catchAllCause((cause) => Effect.logWarning(`cacheness: ${namespace}: could not renew a lease`, cause))
      )
    // Decided once the heartbeat has stopped: a renewal in flight until then may re-take the lease.
    const release = Effect.suspend(() =>
      held.released && !held.renewedAfterRelease ? Effect.void : memoOf(cache).releaseLease(key, holder).pipe(
        Effect.catchAll((error) =>
          Effect.logWarning(`cacheness: ${namespace}: could not release a lease: ${error.message}`)
        )
      )
    )
    // Another process may have stored the value between our read and taking the lease, unless
    // the lease was taken only while nothing was stored (`checked`).
    const use = body ?? (checked
      ? compute(cache, state, args, params, false, held)
      : Effect.flatMap(readIfPresent(cache, state, key), (stored) => {
        if (Option.isNone(stored)) return compute(cache, state, args, params, false, held)
        // Served without running the function: a hit, as when the lease was found taken.
        state.hits++
        return Effect.succeed(stored.value)
      })) as Effect.Effect<any, CacheError, R>
    return Effect.uninterruptibleMask((restore) =>
      Effect.withFiberRuntime<X, CacheError, R>((fiber) => {
        const stopHeartbeat = startHeartbeat(fiber, renew, Math.max(1, Math.floor(leaseTtl / 3)))
        return Effect.onExit(restore(use), () => Effect.zipRight(stopHeartbeat, release))
      })
    )
  }

  /** Polls the store for another process's result: quickly at first, at most every 250 ms. */
  const pollSchedule = Schedule.exponential("10 millis", 1.5).pipe(
    Schedule.union(Schedule.spaced("250 millis")),
    Schedule.upTo(Duration.millis(leaseTimeout))
  )

  /**
   * Takes or renews the lease at the wall clock's now, read when the effect runs (a claim is
   * re-run by the polling loop). Not `Effect.withClock`: that copies the fiber's services and sets
   * a fiber ref twice, ~5% of a memoised miss's CPU (profile).
   */
  const takeLease = (cache: Cache.Service, key: CacheKey, holder: string) =>
    Effect.suspend(() => memoOf(cache).acquireLeaseAt(key, holder, leaseTtl, wallClock.unsafeCurrentTimeMillis()))

  /**
   * A miss's first attempt at the lease: where the store can, taken in one step only while no
   * entry live at the fiber's clock (the one `has` reads; leases are on the wall clock) is stored
   * under `key` (`Checked`: nothing to read again under it, ~6–8 µs of a miss, measured), else as
   * `takeLease` takes it. `false` when taken by someone else or the value is stored by now: the
   * caller then waits for its turn, which reads the store first.
   */
  const takeFirst = (
    cache: Cache.Service,
    key: CacheKey,
    holder: string
  ): Effect.Effect<typeof Checked | boolean, CacheError> => {
    const ifAbsent = memoOf(cache).acquireLeaseIfAbsentAt
    if (ifAbsent === null) return takeLease(cache, key, holder)
    return Effect.withFiberRuntime((fiber) => {
      const liveAt = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
      return Effect.map(
        ifAbsent(key, holder, leaseTtl, wallClock.unsafeCurrentTimeMillis(), liveAt),
        (taken) => taken ? Checked : false
      )
    })
  }

  /** The value another process stored while holding the lease (counted as a hit), else `Pending`. */
  const storedElsewhere = (cache: Cache.Service, state: State, key: CacheKey) =>
    Effect.map(readIfPresent(cache, state, key), (found): typeof Pending | Exit.Exit<A, E> => {
      if (Option.isNone(found)) return Pending
      state.hits++
      return found.value
    })

  /** Takes the lease, or finds the value another process stored; `Pending` when neither. */
  const claim = (cache: Cache.Service, state: State, key: CacheKey, holder: string) =>
    Effect.flatMap(
      takeLease(cache, key, holder),
      (acquired): Effect.Effect<typeof Acquired | typeof Pending | Exit.Exit<A, E>, CacheError> =>
        acquired ? Effect.succeed(Acquired) : storedElsewhere(cache, state, key)
    )

  /**
   * After a first attempt found the lease taken: the value if it is stored by now, else claims
   * until the lease or a value turns up; `Pending` once `leaseTimeout` has passed.
   */
  const waitForTurn = (cache: Cache.Service, state: State, key: CacheKey, holder: string) =>
    // The polling schedule is built only when the value is not there yet.
    Effect.flatMap(storedElsewhere(cache, state, key), (first) =>
      first !== Pending ? Effect.succeed(first) : pollForTurn(cache, state, key, holder))

  const pollForTurn = (cache: Cache.Service, state: State, key: CacheKey, holder: string) =>
    Effect.flatMap(Effect.withClock(Schedule.driver(pollSchedule), wallClock), (driver) => {
      const loop: Effect.Effect<typeof Acquired | typeof Pending | Exit.Exit<A, E>, CacheError> = Effect.flatMap(
        claim(cache, state, key, holder),
        (claimed) =>
          claimed !== Pending
            ? Effect.succeed(claimed)
            : Effect.matchEffect(Effect.withClock(driver.next(undefined), wallClock), {
              onFailure: () => Effect.succeed(Pending),
              onSuccess: () => loop
            })
      )
      return loop
    })

  /**
   * Recomputes `key` in the background, once per version of the entry: only while the stored
   * entry still has the expiry the caller saw (else someone refreshed or removed it), once per key
   * in this process (`refreshing`), and through the lease once across processes (a process that
   * finds the lease taken leaves it to its holder). A failure keeps the stored value: a warning.
   */
  const revalidate = (
    cache: Cache.Service,
    state: State,
    key: CacheKey,
    args: Args,
    params: KeyParams,
    seen: number | null
  ): Effect.Effect<void, never, R> =>
    Effect.suspend(() => {
      const running = refreshingOf(cache)
      if (running.has(key)) return Effect.void
      running.add(key)
      const unchanged = Effect.map(memoOf(cache).expiryOf(key), (expiry) => expiry === seen)
      const recompute = Effect.flatMap(
        unchanged,
        (again): Effect.Effect<Exit.Exit<A, E> | undefined, CacheError, R> =>
          again ? compute(cache, state, args, params, true) : Effect.succeed(undefined)
      )
      const work = Effect.gen(function*() {
        if (!(yield* unchanged)) return
        let exit: Exit.Exit<A, E> | undefined
        if (!useLease) exit = yield* recompute
        else {
          const holder = holderId()
          const acquired = yield* takeLease(cache, key, holder)
          // Taken: another call (in any process) is computing this key already.
          if (!acquired) return
          exit = yield* computeLeased(
            cache,
            state,
            key,
            holder,
            args,
            params,
            // Checked again under the lease: another process may have refreshed it meanwhile.
            recompute
          )
        }
        if (exit !== undefined && Exit.isFailure(exit)) {
          yield* Effect.logWarning(
            `cacheness: ${namespace}: background recomputation of ${key} failed; the stored value stays`,
            exit.cause
          )
        }
      }).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.void
            : Effect.logWarning(
              `cacheness: ${namespace}: background recomputation of ${key} failed; the stored value stays`,
              cause
            )
        ),
        Effect.ensuring(Effect.sync(() => running.delete(key)))
      )
      return memoOf(cache).fork(work)
    })

  /** Serves a held result, starting a background recomputation when the plan says so. */
  const serveFound = (
    cache: Cache.Service,
    state: State,
    key: CacheKey,
    args: Args,
    params: KeyParams,
    found: Found<A, E>,
    plan: "Serve" | "Revalidate"
  ): Effect.Effect<Exit.Exit<A, E>, never, R> => {
    state.hits++
    return plan === "Serve"
      ? Effect.succeed(found.exit)
      : Effect.as(revalidate(cache, state, key, args, params, found.expiresAt), found.exit)
  }

  /** Store, else lease and compute, else wait for the process computing it. */
  const load = (cache: Cache.Service, state: State, key: CacheKey, args: Args, params: KeyParams, missed: boolean) =>
    missed ?
      miss(cache, state, key, args, params, false) :
      Effect.flatMap(readFound(cache, state, key), (stored): Effect.Effect<Exit.Exit<A, E>, CacheError, R> => {
        if (Option.isSome(stored)) {
          const found = stored.value
          if (found.expiresAt === null || (!found.stale && refreshAhead === 0)) {
            state.hits++
            return Effect.succeed(found.exit)
          }
          const expiresAt = found.expiresAt
          return Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const plan = planAt(expiresAt, found.staleUntil, now)
            if (plan === "Serve" || plan === "Revalidate") {
              return serveFound(cache, state, key, args, params, found, plan)
            }
            const computed = miss(cache, state, key, args, params, plan === "ServeOnError")
            if (plan === "Load") return computed
            return Effect.flatMap(computed, (exit) => {
              if (Exit.isSuccess(exit) || !Cause.isFailType(exit.cause)) return Effect.succeed(exit)
              return Effect.as(
                Effect.logWarning(
                  `cacheness: ${namespace}: recomputation of ${key} failed within staleIfError; answered with the stale value`,
                  exit.cause
                ),
                found.exit
              )
            })
          })
        }
        return miss(cache, state, key, args, params, false)
      })

  /** A miss (or a stale value to replace): lease and compute, else wait for the process computing it. */
  const miss = (
    cache: Cache.Service,
    state: State,
    key: CacheKey,
    args: Args,
    params: KeyParams,
    keepStale: boolean
  ): Effect.Effect<Exit.Exit<A, E>, CacheError, R> => {
    if (!useLease) return compute(cache, state, args, params, keepStale)
    const holder = holderId()
    const onTurn = (
      turn: typeof Acquired | typeof Pending | Exit.Exit<A, E>
    ): Effect.Effect<Exit.Exit<A, E>, CacheError, R> => {
      if (turn === Acquired) {
        return computeLeased(
          cache,
          state,
          key,
          holder,
          args,
          params,
          keepStale
            ? Effect.flatMap(
              readIfPresent(cache, state, key),
              (stored) =>
                Option.isSome(stored) ? Effect.succeed(stored.value) : compute(cache, state, args, params, true)
            )
            : undefined
        )
      }
      if (turn === Pending) {
        return Effect.zipRight(
          Effect.logWarning(`cacheness: ${namespace}: waited ${leaseTimeout} ms for another process; computing here`),
          compute(cache, state, args, params, keepStale)
        )
      }
      return Effect.succeed(turn)
    }
    // The lease is usually free: taken at once, the computation starts without the claim's steps.
    return Effect.flatMap(
      keepStale ? takeLease(cache, key, holder) : takeFirst(cache, key, holder),
      (acquired) =>
        acquired === Checked
          ? computeLeased(cache, state, key, holder, args, params, undefined, true)
          : acquired
          ? onTurn(Acquired)
          : Effect.flatMap(waitForTurn(cache, state, key, holder), onTurn)
    )
  }

  const call = (cache: Cache.Service, args: Args): Effect.Effect<A, E | CacheError, R> => {
    const params = paramsOf(args)
    return Effect.flatMap(cache.key(params, { namespace }), (key) => callKeyed(cache, args, key, params))
  }

  /**
   * `call` once the key is known (derived by `memoHit`, or effectfully by `call`); after a miss
   * `memoHit` read in the store (`Missed`), straight to computing it.
   */
  const callKeyed = (
    cache: Cache.Service,
    args: Args,
    found: CacheKey | Missed,
    params: KeyParams = paramsOf(args)
  ): Effect.Effect<A, E | CacheError, R> => {
    const state = stateOf(cache)
    if (typeof found !== "string") return callSlow(cache, state, found.key, args, params, true)
    const key = found
    // 1. memory, while nothing in the store has changed
    if (memoSize !== 0) {
      const entry = state.memo.get(key)
      if (entry !== undefined && entry.change === changeCount(cache, state)) {
        if (entry.expiresAt === null) return served(cache, state, key, entry.exit)
        // The read decision's expiry rule (the rest of it was taken when the value was read),
        // and the stale windows: a stale value held here is served as the store would serve it.
        const expiresAt = entry.expiresAt
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const plan = isLiveAt(expiresAt, now) && refreshAhead === 0
            ? "Serve"
            : planAt(expiresAt, entry.staleUntil, now)
          if (plan === "Serve") return served(cache, state, key, entry.exit)
          if (plan === "Revalidate") {
            // Already being recomputed (the common case for a hot stale key): just the held value.
            if (refreshingOf(cache).has(key)) return served(cache, state, key, entry.exit)
            return Effect.zipRight(
              revalidate(cache, state, key, args, params, expiresAt),
              served(cache, state, key, entry.exit)
            )
          }
          return callSlow(cache, state, key, args, params, false)
        })
      }
    }
    return callSlow(cache, state, key, args, params, false)
  }

  const served = (cache: Cache.Service, state: State, key: CacheKey, exit: Exit.Exit<A, E>) => {
    state.hits++
    return Effect.zipRight(memoOf(cache).recordHit(key), exit)
  }

  const callSlow = (
    cache: Cache.Service,
    state: State,
    key: CacheKey,
    args: Args,
    params: KeyParams,
    missed: boolean
  ): Effect.Effect<A, E | CacheError, R> =>
    Effect.suspend(() => {
      // 2. a call with the same key is running in this process: share its result
      const running = inFlightOf(cache)
      const existing = running.get(key)
      if (existing !== undefined) {
        const waiters: Deferred.Deferred<A, E | CacheError> = existing.waiters ??= Deferred.unsafeMake(FiberId.none)
        return Effect.flatMap(Effect.exit(Deferred.await(waiters)), (exit) => {
          // The computing caller was interrupted: its waiters start over rather than inherit that.
          if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) {
            return callSlow(cache, state, key, args, params, false)
          }
          state.hits++
          return exit
        })
      }
      const entry: Running = { waiters: undefined }
      running.set(key, entry)
      return load(cache, state, key, args, params, missed).pipe(
        Effect.flatten,
        Effect.onExit((exit) =>
          Effect.suspend(() => {
            if (running.get(key) === entry) running.delete(key)
            return entry.waiters === undefined ? Effect.void : Deferred.done(entry.waiters, exit)
          })
        )
      )
    })

  /**
   * A hit held in memory, settled without the effect runtime: the stored exit; for anything else
   * the key when it was derived (`callKeyed` then handles the call), or `undefined` (`call` does).
   * `now` is the caller's clock.
   */
  const memoHit = (cache: Cache.Service, args: Args, now: number): MemoLookup<A, E> => {
    const unsafe = memoOf(cache).unsafe
    if (memoSize === 0 || invalid !== undefined || unsafe === null) return undefined
    let key: CacheKey | undefined
    try {
      key = unsafe.key(paramsOf(args), namespace)
    } catch {
      return undefined
    }
    if (key === undefined) return undefined
    const state = stateOf(cache)
    const entry = state.memo.get(key)
    if (entry === undefined || entry.change !== changeCount(cache, state)) return readSync(cache, state, key, now)
    if (
      entry.expiresAt !== null &&
      (!isLiveAt(entry.expiresAt, now) || (refreshAhead > 0 && now >= entry.expiresAt - refreshAhead))
    ) {
      // Stale within staleWhileRevalidate, or in the refresh-ahead window: served here only while
      // its background recomputation is already running (the common case for a hot key), as
      // `call` would serve it; otherwise the effectful call starts the recomputation or loads.
      if (planAt(entry.expiresAt, entry.staleUntil, now) !== "Revalidate" || !refreshingOf(cache).has(key)) {
        return key
      }
    }
    if (unsafe.recordHit(key, now) === NotSync) return key
    state.hits++
    return entry.exit
  }

  /**
   * The store read of a call whose result is not held in memory, settled synchronously when the
   * store can and nothing but serving it can follow (no schema, no stale windows, no
   * refresh-ahead): a live hit is remembered and returned without the effect runtime, a miss
   * answered as `Missed` so the call computes without reading again; otherwise the key.
   */
  const readSync = (cache: Cache.Service, state: State, key: CacheKey, now: number): MemoLookup<A, E> => {
    const unsafe = memoOf(cache).unsafe
    if (unsafe === null || schema !== undefined || grace > 0 || refreshAhead > 0) return key
    const change = changeForRead(cache, state)
    const found = unsafe.read(key, now)
    if (found === NotSync) return key
    if (found === null) return { _tag: "Missed", key }
    const exit = fromStored(found.value)
    remember(state, key, exit, change, found.record.expiresAt, goneAt(found.record))
    state.hits++
    return exit
  }

  const memoised = ((...args: Args) =>
    invalid !== undefined
      ? Effect.fail(invalid)
      : Effect.withFiberRuntime((fiber) => {
        const cache = Context.getOption(fiber.getFiberRef(FiberRef.currentContext), Cache)
        if (Option.isNone(cache)) return Effect.flatMap(Cache, (cache) => call(cache, args))
        // The fiber's clock, as `Clock.currentTimeMillis` would read it (a TestClock in tests).
        const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
        const found = memoHit(cache.value, args, now)
        if (found === undefined) return call(cache.value, args)
        return typeof found === "string" || found._tag === "Missed" ? callKeyed(cache.value, args, found) : found
      })) as Cached<Args, A, E, R>

  Object.defineProperties(memoised, {
    info: {
      value: Effect.flatMap(Cache, (cache) =>
        Effect.map(cache.list({ namespace }), (entries): CachedInfo => {
          const state = stateOf(cache)
          return { hits: state.hits, misses: state.misses, entries: entries.length }
        }))
    },
    clear: {
      value: Effect.flatMap(Cache, (cache) =>
        Effect.suspend(() => {
          const state = stateOf(cache)
          state.memo.clear()
          state.checkedAt = Number.NEGATIVE_INFINITY
          return cache.invalidateWhere({ namespace })
        }))
    },
    namespace: { value: namespace },
    name: { value: name },
    [unsafeMemoHit]: {
      value: {
        lookup: memoHit,
        callKeyed: (cache: Cache.Service, args: Args, key: CacheKey | Missed) =>
          invalid !== undefined ? Effect.fail(invalid) : callKeyed(cache, args, key)
      }
    }
  })
  return memoised
}

/**
 * Memoises a function returning an Effect in the cache; dual: `cached(f, options)` or
 * `pipe(f, cached(options))`. The key is the function's name and the canonical encoding of its
 * arguments (or of `options.key(...args)`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const cached: {
  <A = any, E = any>(
    options: CachedOptions<any, A, E>
  ): <Args extends ReadonlyArray<any>, A2 extends A, E2 extends E, R>(
    f: (...args: Args) => Effect.Effect<A2, E2, R>
  ) => Cached<Args, A2, E2, R>
  <Args extends ReadonlyArray<any>, A, E, R>(
    f: (...args: Args) => Effect.Effect<A, E, R>,
    options?: CachedOptions<Args, NoInfer<A>, NoInfer<E>>
  ): Cached<Args, A, E, R>
} = dual(
  (args) => typeof args[0] === "function",
  make
) as any
