/**
 * An `@effect/platform` `KeyValueStore` over a namespace of the cache.
 *
 * @since 0.1.0
 */
import * as PlatformError from "@effect/platform/Error"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Cache } from "../cache/service.js"
import { type CacheError, ConfigError } from "../errors.js"
import * as Validate from "../shared/validate.js"
import * as Entries from "./entries.js"
import { exclusive } from "./lease.js"

/**
 * Options of `CacheKeyValueStore.layer` and `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The cache namespace of the store's entries. Default `"KeyValueStore"`. */
  readonly namespace?: string | undefined
}

/**
 * The namespace a store uses when none is given.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_NAMESPACE = "KeyValueStore"

const OPTIONS = { namespace: Validate.optionalString }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const failure = (method: string, error: CacheError): PlatformError.PlatformError =>
  new PlatformError.SystemError({
    reason: "Unknown",
    module: "KeyValueStore",
    method,
    description: error.message,
    cause: error
  })

const notStored = (method: string, value: unknown): PlatformError.PlatformError =>
  new PlatformError.SystemError({
    reason: "InvalidData",
    module: "KeyValueStore",
    method,
    description: `the entry holds a ${
      value === null ? "null" : typeof value
    }, not a string or a Uint8Array (it was not written through a KeyValueStore)`
  })

/** A stored value as a string: strings as they are, bytes as UTF-8. */
const asString = (method: string, value: unknown): Effect.Effect<string, PlatformError.PlatformError> =>
  typeof value === "string"
    ? Effect.succeed(value)
    : value instanceof Uint8Array
    ? Effect.succeed(decoder.decode(value))
    : Effect.fail(notStored(method, value))

/** A stored value as bytes: bytes as they are, strings UTF-8 encoded. */
const asBytes = (method: string, value: unknown): Effect.Effect<Uint8Array, PlatformError.PlatformError> =>
  value instanceof Uint8Array
    ? Effect.succeed(value)
    : typeof value === "string"
    ? Effect.succeed(encoder.encode(value))
    : Effect.fail(notStored(method, value))

/**
 * A `KeyValueStore` over one namespace of `cache`: entries never expire and `size` and `clear`
 * see this namespace only; `modify` holds the cache's cross-process lease on the key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  cache: Cache.Service,
  options?: Options
): Effect.Effect<KeyValueStore.KeyValueStore, ConfigError> =>
  Effect.gen(function*() {
    const o = Validate.fields("CacheKeyValueStore", options, OPTIONS)
    if (o instanceof ConfigError) return yield* o
    const namespace = o.namespace ?? DEFAULT_NAMESPACE
    const entries = Entries.make(cache, namespace)
    const read = <A>(
      method: string,
      key: string,
      as: (method: string, value: unknown) => Effect.Effect<A, PlatformError.PlatformError>
    ) =>
      entries.get(key).pipe(
        Effect.mapError((error) => failure(method, error)),
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeedNone,
          onSome: (value) => Effect.asSome(as(method, value))
        }))
      )
    const set = (method: string, key: string, value: string | Uint8Array) =>
      Effect.mapError(entries.set(key, value, null), (error) => failure(method, error))
    /** Read, apply `f`, write — all under the key's lease, so no other process's write is lost. */
    const modifyWith = <A extends string | Uint8Array>(
      method: string,
      key: string,
      as: (method: string, value: unknown) => Effect.Effect<A, PlatformError.PlatformError>,
      f: (value: A) => A
    ): Effect.Effect<Option.Option<A>, PlatformError.PlatformError> =>
      Effect.flatMap(
        Effect.mapError(entries.key(key), (error) => failure(method, error)),
        (cacheKey) =>
          exclusive(
            cache,
            cacheKey,
            Effect.flatMap(read(method, key, as), (current) => {
              if (Option.isNone(current)) return Effect.succeedNone
              const next = f(current.value)
              return Effect.as(set(method, key, next), Option.some(next))
            })
          ).pipe(Effect.mapError((error) => PlatformError.isPlatformError(error) ? error : failure(method, error)))
      )
    return KeyValueStore.make({
      get: (key) => read("get", key, asString),
      getUint8Array: (key) => read("getUint8Array", key, asBytes),
      set: (key, value) => set("set", key, value),
      remove: (key) => Effect.asVoid(Effect.mapError(entries.remove(key), (error) => failure("remove", error))),
      has: (key) => Effect.mapError(entries.has(key), (error) => failure("has", error)),
      clear: Effect.asVoid(Effect.mapError(entries.clear, (error) => failure("clear", error))),
      size: Effect.mapError(entries.size, (error) => failure("size", error)),
      modify: (key, f) => modifyWith("modify", key, asString, f),
      modifyUint8Array: (key, f) => modifyWith("modifyUint8Array", key, asBytes, f)
    })
  })

/**
 * The `KeyValueStore` layer over the `Cache` in context. Bad options are a defect carrying the
 * `ConfigError` (the layer's error channel is `never`, as `KeyValueStore` layers' are).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<KeyValueStore.KeyValueStore, never, Cache> =>
  Layer.effect(KeyValueStore.KeyValueStore, Effect.orDie(Effect.flatMap(Cache, (cache) => make(cache, options))))
