/**
 * An `@effect/experimental` `BackingPersistence` over the cache: each `make(storeId)` is a
 * namespace, TTLs are entry TTLs, and values are stored as they are given (the cache's codec
 * picks their format; no JSON string in between).
 *
 * @since 0.1.0
 */
import * as Persistence from "@effect/experimental/Persistence"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Cache } from "../cache/service.js"
import { type CacheError, ConfigError } from "../errors.js"
import * as Validate from "../shared/validate.js"
import * as Entries from "./entries.js"

/**
 * Options of `CachePersistence.layer` and `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Put before each store id to name its namespace. Default `""`: the namespace is the store id. */
  readonly prefix?: string | undefined
}

const OPTIONS = { prefix: Validate.optionalString }

/** A TTL in milliseconds: `null` never expires; `0` or less is already expired. */
const ttlMillis = (ttl: Option.Option<Duration.Duration>): number | null =>
  Option.isNone(ttl) || !Duration.isFinite(ttl.value) ? null : Duration.toMillis(ttl.value)

/**
 * A `BackingPersistence` over `cache`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  cache: Cache.Service,
  options?: Options
): Effect.Effect<Persistence.BackingPersistence, ConfigError> =>
  Effect.gen(function*() {
    const o = Validate.fields("CachePersistence", options, OPTIONS)
    if (o instanceof ConfigError) return yield* o
    const prefix = o.prefix ?? ""
    return Persistence.BackingPersistence.of({
      [Persistence.BackingPersistenceTypeId]: Persistence.BackingPersistenceTypeId,
      make: (storeId) =>
        Effect.sync(() => {
          const entries = Entries.make(cache, `${prefix}${storeId}`)
          const backing = <A>(method: string, effect: Effect.Effect<A, CacheError>) =>
            Effect.mapError(effect, (error) => Persistence.PersistenceBackingError.make(method, error))
          /** A write, or for a TTL already run out the removal of what was there. */
          const write = (key: string, value: unknown, ttl: Option.Option<Duration.Duration>) => {
            const ms = ttlMillis(ttl)
            return ms !== null && ms <= 0 ? Effect.asVoid(entries.remove(key)) : entries.set(key, value, ms)
          }
          const store: Persistence.BackingPersistenceStore = {
            get: (key) => backing("get", entries.get(key)),
            getMany: (keys) => backing("getMany", Effect.map(entries.getMany(keys), (found) => Array.from(found))),
            set: (key, value, ttl) => backing("set", write(key, value, ttl)),
            setMany: (writes) => {
              const live: Array<Entries.Write> = []
              const gone: Array<string> = []
              for (const [key, value, ttl] of writes) {
                const ms = ttlMillis(ttl)
                if (ms !== null && ms <= 0) gone.push(key)
                else live.push([key, value, ms])
              }
              return backing(
                "setMany",
                Effect.zipRight(
                  entries.setMany(live),
                  Effect.forEach(gone, (key) => entries.remove(key), { discard: true })
                )
              )
            },
            remove: (key) => backing("remove", Effect.asVoid(entries.remove(key))),
            clear: backing("clear", Effect.asVoid(entries.clear))
          }
          return store
        })
    })
  })

/**
 * The `BackingPersistence` layer over the `Cache` in context; `Persistence.layerResult` and
 * `PersistedCache` run on it. Bad options are a defect carrying the `ConfigError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Persistence.BackingPersistence, never, Cache> =>
  Layer.effect(Persistence.BackingPersistence, Effect.orDie(Effect.flatMap(Cache, (cache) => make(cache, options))))
