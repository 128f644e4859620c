/**
 * One namespace of a cache seen as a string-keyed store: what the KeyValueStore, Persistence and
 * Keyv adapters share. A string key is never handed to the cache as it is — a 16-hex string
 * would be taken as a digest — but as the parameters `{ key }`, hashed like any other.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Cache, CacheError, PutOptions } from "../cache/service.js"
import type { CacheKey, KeyParams } from "../schema/CacheKey.js"

/**
 * The parameters a string key is stored under: always an object, so no string is ever read as a
 * digest, and the same in every namespace (the namespace is part of the entry's identity).
 *
 * @since 0.1.0
 * @category keys
 */
export const paramsOf = (key: string): KeyParams => ({ key })

/**
 * The string key of a stored entry, read back from its stored parameters (`undefined` when the
 * cache does not store key parameters, or the entry was not written by an adapter).
 *
 * @since 0.1.0
 * @category keys
 */
export const keyOfParams = (params: Readonly<Record<string, unknown>> | null): string | undefined => {
  if (params === null) return undefined
  const names = Object.keys(params)
  return names.length === 1 && names[0] === "key" && typeof params.key === "string" ? params.key : undefined
}

/**
 * A value to store with its TTL in milliseconds (`null`: never expires).
 *
 * @since 0.1.0
 * @category models
 */
export type Write = readonly [key: string, value: unknown, ttl: number | null]

/**
 * A namespace of a cache as a string-keyed store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entries {
  readonly namespace: string
  readonly cache: Cache.Service
  /** The cache key of a string key in this namespace. */
  readonly key: (key: string) => Effect.Effect<CacheKey, CacheError>
  readonly get: (key: string) => Effect.Effect<Option.Option<unknown>, CacheError>
  /** In order, `None` for a miss: one `Cache.getMany` (one metadata query). */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Option.Option<unknown>>, CacheError>
  readonly has: (key: string) => Effect.Effect<boolean, CacheError>
  readonly set: (key: string, value: unknown, ttl: number | null) => Effect.Effect<void, CacheError>
  /** One `Cache.putMany`: one metadata transaction, all or none. */
  readonly setMany: (writes: ReadonlyArray<Write>) => Effect.Effect<void, CacheError>
  /** `true` when the key existed. */
  readonly remove: (key: string) => Effect.Effect<boolean, CacheError>
  /** The entries of this namespace, from the store's per-namespace count. */
  readonly size: Effect.Effect<number, CacheError>
  /** Removes every entry of this namespace (and no other); returns how many. */
  readonly clear: Effect.Effect<number, CacheError>
  /** The string keys of this namespace's live entries, oldest first. */
  readonly keys: Effect.Effect<ReadonlyArray<string>, CacheError>
}

const putOptions = (namespace: string, ttl: number | null): PutOptions => ({ namespace, ttl })

/**
 * A namespace of `cache` as a string-keyed store. Entries are written with the TTL given
 * (`null`: never), never the cache's default: a store is not a cache.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (cache: Cache.Service, namespace: string): Entries => {
  const inNamespace = { namespace }
  const key = (k: string) => cache.key(paramsOf(k), inNamespace)
  const set = (k: string, value: unknown, ttl: number | null) =>
    Effect.asVoid(cache.put(paramsOf(k), value, putOptions(namespace, ttl)))
  return {
    namespace,
    cache,
    key,
    get: (k) => cache.get(paramsOf(k), inNamespace),
    getMany: (keys) => cache.getMany(keys.map(paramsOf), inNamespace),
    has: (k) => cache.has(paramsOf(k), inNamespace),
    set,
    setMany: (writes) =>
      Effect.asVoid(
        cache.putMany(writes.map(([k, value, ttl]) => [paramsOf(k), value, putOptions(namespace, ttl)] as const))
      ),
    remove: (k) => cache.invalidate(paramsOf(k), inNamespace),
    // Counted per namespace by the metadata store: no scan. Expired entries not yet cleaned up
    // count (a store's own entries never expire).
    size: Effect.map(cache.stats(inNamespace), (stats) => stats.entries),
    clear: cache.invalidateWhere({ namespace }),
    keys: Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.map(cache.list({ namespace }), (entries) => {
        const keys: Array<string> = []
        for (const entry of entries) {
          if (entry.expiresAt !== null && entry.expiresAt <= now) continue
          const k = keyOfParams(entry.params)
          if (k !== undefined) keys.push(k)
        }
        return keys
      }))
  }
}

/**
 * `Some` of the TTL in milliseconds from an optional duration in milliseconds, for the adapters
 * whose contracts give an absolute expiry: a deadline already passed is `None` (do not store).
 *
 * @since 0.1.0
 * @category ttl
 */
export const ttlUntil = (expires: number | undefined, now: number): Option.Option<number | null> =>
  expires === undefined ? Option.some(null) : expires > now ? Option.some(expires - now) : Option.none()
