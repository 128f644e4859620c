/**
 * The memory tier: decoded values of recent hits kept in process memory in front of the stores,
 * bounded by entries and by bytes (least recently used first out), and coherent with every other
 * process using the same stores.
 *
 * How it stays coherent: each held value carries the version of the row it was read from
 * (checksum, blob id, expiry) and the store's change count (`changeCount`) read *before* it was
 * read. A hit is served from memory alone when the count proves nothing changed since; otherwise
 * the row is probed, and the held value is served (no decode, no blob read) when the row is the
 * same version, or dropped and read through the stores when it is not.
 *
 * - An *exact* count (SQLite's `PRAGMA data_version` plus this process's own writes; the memory
 *   store's write counter) has moved by the time any write is acknowledged: at `maxStaleness` 0
 *   it is read on every hit, and an unchanged count is proof. With `maxStaleness > 0` it is read
 *   at most once per that interval (by the cache's `Clock`).
 * - A *pushed* count (PostgreSQL: `NOTIFY` from triggers, counted by a LISTEN connection) moves
 *   when the notification arrives, a moment after the commit, so it proves nothing at
 *   `maxStaleness` 0: every hit probes its row (one indexed primary-key query) and skips only
 *   the decode and the blob. With `maxStaleness > 0` a hit is served on an unchanged count while
 *   the value was checked within the window: a notification ends trust at once, a lost one after
 *   the window at the latest. While the listener is not confirmed the count is undefined: probe.
 * - No count (the JSON store): every hit probes its row.
 *
 * This process's own writes are always seen at once: each makes the next read read the count.
 *
 * TTL is respected from memory: a held entry keeps its `expiresAt` (and `staleUntil`, for stores
 * that have it) and is never served past it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { MetadataStore, StoredValue } from "../metadata/service.js"
import { WRITES } from "../metadata/writes.js"
import { parseSize } from "../schema/CacheConfig.js"
import { type CacheKey, isCacheKey, type KeyInput, type KeyParams } from "../schema/CacheKey.js"
import { NotSync } from "../shared/sync.js"
import * as Validate from "../shared/validate.js"
import * as CacheMetrics from "./metrics.js"
import { isLiveAt, readGetOptions } from "./read.js"
import { type CacheError, ConfigError, type GetOptions } from "./service.js"

/**
 * `memory` options of `Cache.layer`, `Cache.layerFromServices` and `cacheness(...)`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /** At most this many values held. Default 10,000. */
  readonly maxEntries?: number | undefined
  /** At most this many bytes held (stored bytes, or a typed array's length when larger). Default 64 MiB. */
  readonly maxSize?: number | string | undefined
  /**
   * How long another process's write may go unseen: the store's change count is read at most once
   * per this interval instead of on every read. Default 0: every read checks (coherent).
   */
  readonly maxStaleness?: Duration.DurationInput | undefined
}

/**
 * The memory tier's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedMemory {
  readonly maxEntries: number
  readonly maxSize: number
  readonly maxStaleness: number
}

/**
 * The defaults of a `memory: {}` option.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULTS: ResolvedMemory = { maxEntries: 10_000, maxSize: 64 * 1024 * 1024, maxStaleness: 0 }

const invalid = (field: string, description: string) => new ConfigError({ reason: "Invalid", field, description })

const MEMORY_FIELDS = {
  maxEntries: (field: string, input: unknown): number | undefined | ConfigError =>
    input === undefined || (typeof input === "number" && Number.isSafeInteger(input) && input > 0)
      ? input
      : invalid(field, `must be a positive integer, got ${Validate.show(input)}`),
  maxSize: (field: string, input: unknown): number | undefined | ConfigError => {
    if (input === undefined) return undefined
    const size = typeof input === "number" || typeof input === "string" ? parseSize(input) : Option.none()
    return Option.isSome(size) && size.value > 0
      ? size.value
      : invalid(field, `must be a positive size (bytes or a string like "64 MB"), got ${Validate.show(input)}`)
  },
  maxStaleness: (field: string, input: unknown): number | undefined | ConfigError => {
    if (input === null) return invalid(field, "must be a finite duration (0 checks on every read), got null")
    const millis = Validate.duration(field, input)
    if (millis instanceof ConfigError || millis === undefined || millis === null) return millis ?? undefined
    return Number.isFinite(millis)
      ? millis
      : invalid(field, `must be a finite duration (0 checks on every read), got ${Validate.show(input)}`)
  }
}

/**
 * Validates the `memory` option: `undefined` is no memory tier (`null`), anything else must be an
 * object of known fields, or a `ConfigError` naming the field.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (input: unknown): ResolvedMemory | null | ConfigError => {
  if (input === undefined) return null
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    return invalid("memory", `must be an object { maxEntries?, maxSize?, maxStaleness? }, got ${Validate.show(input)}`)
  }
  const o = Validate.fields("memory", input, MEMORY_FIELDS)
  if (o instanceof ConfigError) return o
  return {
    maxEntries: o.maxEntries ?? DEFAULTS.maxEntries,
    maxSize: o.maxSize ?? DEFAULTS.maxSize,
    maxStaleness: o.maxStaleness ?? DEFAULTS.maxStaleness
  }
}

/** One value held in memory, with the version of the row it was read from. */
interface Held {
  readonly value: unknown
  /** The schema the value was decoded and validated with (`undefined`: none). */
  readonly schema: unknown
  readonly checksum: string
  readonly blobId: string | null
  readonly expiresAt: number | null
  /** End of the grace period, for stores whose rows carry one (`null`: none). */
  readonly staleUntil: number | null
  readonly size: number
  readonly storedBytes: number
  /** The store's change count read before the value was read or last checked (`undefined`: none). */
  change: number | undefined
  /** When (cache `Clock`) the value was read or last checked against its row. */
  checkedAt: number
  /** The tier's move count when this entry last went to the most recently used end. */
  moved: number
}

/** The held value's bytes: its stored size, or a typed array's own length when that is larger. */
const sizeOf = (value: unknown, storedBytes: number): number =>
  ArrayBuffer.isView(value) ? Math.max(value.byteLength, storedBytes) : storedBytes

const staleUntilOf = (record: StoredValue): number | null => {
  const until = (record as { readonly staleUntil?: unknown }).staleUntil
  return typeof until === "number" ? until : null
}

/**
 * How far a store's change count can be trusted:
 * - `exact`: it has moved by the time any write, by anyone, is acknowledged (SQLite's
 *   `data_version`, the memory store): an unchanged count proves a held value current;
 * - `pushed`: it moves when the write's notification arrives, a moment after the commit
 *   (PostgreSQL `NOTIFY`): an unchanged count proves nothing at `maxStaleness` 0 (every hit is
 *   checked against its row), and bounds staleness by `maxStaleness` otherwise.
 *
 * @since 0.1.0
 * @category models
 */
export type ChangeCountKind = "exact" | "pushed"

/**
 * The tier's state and policy: what is held, the LRU bounds, the change count and when it was
 * last read.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tier {
  readonly options: ResolvedMemory
  /** The store's change count as of `now` (read now, or within `maxStaleness`); `undefined`: none. */
  readonly current: (now: number) => number | undefined
  /**
   * A held, live value that is provably current; `"revalidate"` when it is held but must be
   * checked against its row first; `undefined` when nothing usable is held.
   */
  readonly lookup: (
    key: string,
    schema: unknown,
    change: number | undefined,
    now: number
  ) => Held | Revalidate | undefined
  /** Decides a probed row against the held value: the value when it is the same version, else dropped. */
  readonly revalidate: (
    key: string,
    row: StoredValue | null,
    change: number | undefined,
    now: number
  ) => Held | undefined
  /** Holds a value read at `change` (the count read before the read) and `now`. */
  readonly remember: (
    key: string,
    value: unknown,
    schema: unknown,
    record: StoredValue,
    change: number | undefined,
    now: number
  ) => void
  /** This process wrote: the next read reads the change count, whatever `maxStaleness` says. */
  readonly forceCheck: () => void
  /** What is held, and how hits were served: from memory alone, or after checking the row. */
  readonly stats: () => TierStats
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TierStats {
  readonly entries: number
  readonly bytes: number
  /** Hits served from memory on the change count alone. */
  readonly served: number
  /** Hits served from memory after probing the row (no decode, no blob read). */
  readonly revalidated: number
}

/**
 * `lookup`'s answer when a held value must be checked against its row.
 *
 * @since 0.1.0
 * @category models
 */
export type Revalidate = typeof REVALIDATE
const REVALIDATE = "revalidate" as const

/**
 * A tier over a store's change counter.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: ResolvedMemory,
  changeCount: () => number | undefined,
  kind: ChangeCountKind = "exact"
): Tier => {
  const held = new Map<string, Held>()
  let bytes = 0
  let served = 0
  let revalidated = 0
  let seen: number | undefined
  let checkedAt = Number.NEGATIVE_INFINITY
  const window = options.maxStaleness

  const drop = (key: string) => {
    const entry = held.get(key)
    if (entry !== undefined) {
      held.delete(key)
      bytes -= entry.size
    }
  }

  // A pushed count is a plain number in memory: read on every lookup. An exact one may cost a
  // query (SQLite's PRAGMA, ~4 µs): read at most once per window.
  const current = window === 0 || kind === "pushed" ? changeCount : (now: number) => {
    // A clock that went backwards (or a test that set it back) checks again rather than trust forever.
    if (now - checkedAt < window && now >= checkedAt) return seen
    seen = changeCount()
    checkedAt = seen === undefined ? Number.NEGATIVE_INFINITY : now
    return seen
  }

  /** Whether the count alone proves a held value current. */
  const trusted = kind === "exact"
    ? (entry: Held, change: number | undefined) => change !== undefined && entry.change === change
    : window === 0
    ? () => false
    : (entry: Held, change: number | undefined, now: number) =>
      change !== undefined && entry.change === change && now - entry.checkedAt < window && now >= entry.checkedAt

  // Most recently used last: the Map's order is the LRU order. Moving an entry to the end costs
  // ~0.3 µs (a third of a hit's budget), so an entry fewer than a quarter of the bound's moves
  // from the end stays put: it is among the newest quarter, far from eviction either way.
  let moves = 0
  const recent = Math.max(1, Math.floor(options.maxEntries / 4))
  const touch = (key: string, entry: Held) => {
    if (moves - entry.moved < recent) return entry
    held.delete(key)
    held.set(key, entry)
    entry.moved = ++moves
    return entry
  }

  return {
    options,
    current,
    lookup: (key, schema, change, now) => {
      const entry = held.get(key)
      if (entry === undefined) return undefined
      if (entry.schema !== schema || !isLiveAt(entry.expiresAt, now)) {
        drop(key)
        return undefined
      }
      if (!trusted(entry, change, now)) return REVALIDATE
      served++
      return touch(key, entry)
    },
    revalidate: (key, row, change, now) => {
      const entry = held.get(key)
      if (entry === undefined) return undefined
      if (
        row === null || row.checksum !== entry.checksum || row.blobId !== entry.blobId ||
        row.expiresAt !== entry.expiresAt || staleUntilOf(row) !== entry.staleUntil || !isLiveAt(row.expiresAt, now)
      ) {
        drop(key)
        return undefined
      }
      entry.change = change
      entry.checkedAt = now
      revalidated++
      return touch(key, entry)
    },
    remember: (key, value, schema, record, change, now) => {
      drop(key)
      const size = sizeOf(value, record.storedBytes)
      if (size > options.maxSize) return
      held.set(key, {
        value,
        schema,
        checksum: record.checksum,
        blobId: record.blobId,
        expiresAt: record.expiresAt,
        staleUntil: staleUntilOf(record),
        size,
        storedBytes: record.storedBytes,
        change,
        checkedAt: now,
        moved: ++moves
      })
      bytes += size
      while (held.size > options.maxEntries || bytes > options.maxSize) drop(held.keys().next().value!)
    },
    forceCheck: () => {
      checkedAt = Number.NEGATIVE_INFINITY
    },
    stats: () => ({ entries: held.size, bytes, served, revalidated })
  }
}

/**
 * The store, with every write followed by `onWrite` — so a process sees its own writes at once
 * even when `maxStaleness` lets it skip the change count.
 *
 * @since 0.1.0
 * @category constructors
 */
export const watchWrites = (metadata: MetadataStore.Service, onWrite: () => void): MetadataStore.Service => {
  const after = Effect.sync(onWrite)
  const watched: Record<string, unknown> = { ...metadata, clear: Effect.ensuring(metadata.clear, after) }
  for (const name of WRITES) {
    const write = metadata[name] as (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>
    watched[name] = (...args: ReadonlyArray<unknown>) => Effect.ensuring(write(...args), after)
  }
  return watched as unknown as MetadataStore.Service
}

/**
 * What the tier's reads need from the engine.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadDeps {
  /** The key synchronously, `undefined` when only the effectful hasher can tell. */
  readonly keySync: ((params: KeyParams) => CacheKey | undefined) | null
  readonly toKey: (input: KeyInput) => Effect.Effect<CacheKey, CacheError>
  readonly metadata: MetadataStore.Service
  /** The read the cache does without the tier, projecting the hit with its row. */
  readonly readProbed: <A, B>(
    input: KeyInput,
    options: GetOptions<A, any> | undefined,
    project: (value: A, record: StoredValue) => B
  ) => Effect.Effect<Option.Option<B>, CacheError>
}

/** Hot-path metric updates carry no extra labels (see CacheMetrics). */
const NO_LABELS: ReadonlyArray<never> = []

/**
 * Sentinel of `unsafeGet`: the tier cannot answer synchronously (then run `get`).
 *
 * @since 0.1.0
 * @category models
 */
export const Unanswered: unique symbol = Symbol.for("cacheness/MemoryTier/Unanswered")

/**
 * `get` through the tier (Effect), and its synchronous form for the Promise facade.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeReads = (tier: Tier, deps: ReadDeps) => {
  const { metadata } = deps

  const keyOf = (input: KeyInput): CacheKey | undefined =>
    typeof input === "string"
      ? (isCacheKey(input) ? input : undefined)
      : deps.keySync === null
      ? undefined
      : deps.keySync(input)

  const countHit = (entry: Held) => {
    CacheMetrics.hits.unsafeUpdate(1, NO_LABELS)
    CacheMetrics.bytesRead.unsafeUpdate(entry.storedBytes, NO_LABELS)
  }

  /** A hit served from memory: counted and its access recorded like a store hit. */
  const hit = <A>(key: CacheKey, entry: Held, now: number): Effect.Effect<Option.Option<A>> => {
    countHit(entry)
    const hit = Option.some(entry.value as A)
    return metadata.unsafeRecordAccess(key, now) === NotSync
      ? Effect.as(metadata.recordAccess(key, now), hit)
      : Effect.succeed(hit)
  }

  /** The stores' read, its hit held at `change`. */
  const through = <A>(
    key: CacheKey,
    options: GetOptions<A, any> | undefined,
    change: number | undefined,
    now: number
  ) => {
    const schema = options?.schema
    return deps.readProbed(key, options, (value: A, record) => {
      tier.remember(key, value, schema, record, change, now)
      return value
    })
  }

  const getKeyed = <A>(key: CacheKey, options: GetOptions<A, any> | undefined, now: number) => {
    const change = tier.current(now)
    const found = tier.lookup(key, options?.schema, change, now)
    if (found === undefined) return through(key, options, change, now)
    if (found !== REVALIDATE) return hit<A>(key, found, now)
    const row = metadata.unsafeProbe(key)
    if (row !== NotSync) {
      const entry = tier.revalidate(key, row, change, now)
      return entry === undefined ? through(key, options, change, now) : hit<A>(key, entry, now)
    }
    return Effect.flatMap(metadata.probe(key), (row) => {
      const entry = tier.revalidate(key, Option.getOrNull(row), change, now)
      return entry === undefined ? through(key, options, change, now) : hit<A>(key, entry, now)
    })
  }

  /**
   * `get`: from memory when the tier holds a current, live value for the key and schema;
   * otherwise through the stores, holding the hit.
   */
  const get = <A>(input: KeyInput, options?: GetOptions<A, any>): Effect.Effect<Option.Option<A>, CacheError> =>
    Effect.withFiberRuntime((fiber) => {
      // Bad options are the typed error the stores' read gives, whatever memory holds.
      if (options !== undefined && readGetOptions("get", options) instanceof ConfigError) {
        return deps.readProbed(input, options, (value: A) => value)
      }
      const key = keyOf(input)
      if (key === undefined) {
        return Effect.flatMap(
          deps.toKey(input),
          (key) => Effect.flatMap(Clock.currentTimeMillis, (now) => getKeyed<A>(key, options, now))
        )
      }
      // The fiber's clock, as `Clock.currentTimeMillis` would read it (a TestClock in tests).
      const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
      return getKeyed<A>(key, options, now)
    })

  /**
   * A hit served from memory without the effect runtime (the Promise facade's `get`), or
   * `Unanswered`: then run `get`. `now` is the caller's clock.
   */
  const unsafeGet = (input: KeyInput, options: GetOptions<any, any> | undefined, now: number): unknown => {
    if (options !== undefined && readGetOptions("get", options) instanceof ConfigError) return Unanswered
    let key: CacheKey | undefined
    try {
      key = keyOf(input)
    } catch {
      return Unanswered
    }
    if (key === undefined) return Unanswered
    const change = tier.current(now)
    let found = tier.lookup(key, options?.schema, change, now)
    if (found === REVALIDATE) {
      const row = metadata.unsafeProbe(key)
      if (row === NotSync) return Unanswered
      found = tier.revalidate(key, row, change, now)
    }
    if (found === undefined) return Unanswered
    if (metadata.unsafeRecordAccess(key, now) === NotSync) return Unanswered
    countHit(found)
    return found.value
  }

  return { get, unsafeGet }
}
