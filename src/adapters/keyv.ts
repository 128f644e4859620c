/**
 * `KeyvCacheness`: a Keyv (v6) storage adapter over a cacheness client. Keyv namespaces are
 * cacheness namespaces, Keyv's absolute `expires` become entry TTLs; values are stored as Keyv
 * hands them over (its serialised string by default, any value with `serialization: false`).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { EventEmitter } from "node:events"
import { Cache } from "../cache/service.js"
import { ConfigError } from "../errors.js"
import { cacheness, type CachenessClient, type CachenessOptions } from "../promise.js"
import { show } from "../shared/validate.js"
import * as Entries from "./entries.js"

/**
 * The cacheness namespace of a Keyv without a namespace.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_NAMESPACE = "keyv"

/**
 * An entry as Keyv's `setMany` hands it over: `expires` is absolute (epoch ms), `undefined` never.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyvEntry {
  readonly key: string
  readonly value: unknown
  readonly expires?: number | undefined
}

/** How one of the adapter's methods is implemented, as Keyv's capability detection describes it. */
interface MethodCapability {
  readonly exists: true
  readonly methodType: "async"
}

/**
 * What the adapter declares to Keyv: every storage method (all asynchronous) and `expires: true`
 * — it takes Keyv v6's absolute `expires`, so Keyv uses it directly rather than through its bridge.
 *
 * @since 0.1.0
 * @category models
 */
export interface Capabilities {
  readonly compatible: true
  readonly store: "keyvStorage"
  readonly methods: Readonly<Record<typeof METHODS[number], MethodCapability>>
  readonly expires: true
}

const METHODS = [
  "get",
  "getMany",
  "has",
  "hasMany",
  "set",
  "setMany",
  "delete",
  "deleteMany",
  "clear",
  "disconnect",
  "iterator"
] as const

const CAPABILITIES: Capabilities = {
  compatible: true,
  store: "keyvStorage",
  methods: Object.fromEntries(
    METHODS.map((m) => [m, { exists: true, methodType: "async" }])
  ) as Capabilities["methods"],
  expires: true
}

/** Values fetched per query while iterating. */
const PAGE = 256

const isClient = (u: unknown): u is CachenessClient =>
  typeof u === "object" && u !== null && typeof (u as CachenessClient).run === "function" &&
  typeof (u as CachenessClient).close === "function"

/**
 * The options a `KeyvCacheness` built from a configuration gives its cache unless set: a store is
 * not a cache, so no default TTL (Keyv gives each entry its own) and no size limit.
 *
 * @since 0.1.0
 * @category constants
 */
export const STORE_DEFAULTS: CachenessOptions = { defaultTtl: null, maxSize: null }

/**
 * A Keyv storage adapter over a cacheness cache.
 *
 * `new KeyvCacheness(config)` opens a cache of its own (closed by `disconnect`), with no default
 * TTL and no size limit unless `config` sets them; `new KeyvCacheness(client)` uses a client the
 * caller owns (several adapters, one per Keyv namespace, may share it; `disconnect` leaves it open).
 *
 * @since 0.1.0
 * @category adapters
 */
export class KeyvCacheness extends EventEmitter {
  /** Set by Keyv to its own namespace; `undefined` stores under the namespace `"keyv"`. */
  namespace: string | undefined
  /** The cacheness client the entries live in. */
  readonly client: CachenessClient
  readonly #owned: boolean

  constructor(store?: CachenessOptions | CachenessClient, options?: { readonly namespace?: string | undefined }) {
    super()
    if (store !== undefined && (typeof store !== "object" || store === null)) {
      throw new ConfigError({
        reason: "Invalid",
        field: "KeyvCacheness",
        description: `expected a cacheness configuration or client, got ${show(store)}`
      })
    }
    const namespace: unknown = options?.namespace
    if (namespace !== undefined && typeof namespace !== "string") {
      throw new ConfigError({
        reason: "Invalid",
        field: "KeyvCacheness.namespace",
        description: `expected a string, got ${show(namespace)}`
      })
    }
    if (options !== undefined) {
      for (const name of Object.keys(options)) {
        if (name !== "namespace") {
          throw new ConfigError({
            reason: "Invalid",
            field: `KeyvCacheness.${name}`,
            description: `unknown option ${JSON.stringify(name)}; known options: namespace`
          })
        }
      }
    }
    this.namespace = namespace
    this.#owned = !isClient(store)
    this.client = isClient(store) ? store : cacheness({ ...STORE_DEFAULTS, ...store })
  }

  /** Keyv's capability descriptor: every storage method, asynchronous, and v6 `expires`. */
  get capabilities(): Capabilities {
    return CAPABILITIES
  }

  /** Runs an operation on this adapter's namespace (read when it runs: Keyv may change it). */
  #run<A>(f: (entries: Entries.Entries) => Effect.Effect<A, unknown>): Promise<A> {
    const namespace = this.namespace ?? DEFAULT_NAMESPACE
    return this.client.run(Effect.flatMap(Cache, (cache) => f(Entries.make(cache, namespace))))
  }

  /** The stored value, `undefined` when absent or expired. */
  get<Value>(key: string): Promise<Value | undefined> {
    return this.#run((entries) => Effect.map(entries.get(key), (found) => Option.getOrUndefined(found) as Value))
  }

  /** The stored values in the order of `keys`, `undefined` for each miss. */
  getMany<Value>(keys: Array<string>): Promise<Array<Value | undefined>> {
    return this.#run((entries) =>
      Effect.map(entries.getMany(keys), (found) => found.map((o) => Option.getOrUndefined(o) as Value))
    )
  }

  /** Whether a live entry exists. */
  has(key: string): Promise<boolean> {
    return this.#run((entries) => entries.has(key))
  }

  /** One boolean per key. */
  hasMany(keys: Array<string>): Promise<Array<boolean>> {
    return this.#run((entries) => Effect.forEach(keys, (key) => entries.has(key)))
  }

  /** Stores `value` until `expires` (epoch ms; `undefined` never). A deadline already past stores nothing. */
  set(key: string, value: unknown, expires?: number): Promise<boolean> {
    return this.#run((entries) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Option.match(Entries.ttlUntil(expires, now), {
          onNone: () => Effect.as(entries.remove(key), true),
          onSome: (ttl) => Effect.as(entries.set(key, value, ttl), true)
        }))
    )
  }

  /** Stores every entry in turn; entries whose deadline has passed are removed instead. */
  setMany(values: Array<KeyvEntry>): Promise<Array<boolean>> {
    return this.#run((entries) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const writes: Array<Entries.Write> = []
        const gone: Array<string> = []
        for (const { expires, key, value } of values) {
          const ttl = Entries.ttlUntil(expires, now)
          if (Option.isSome(ttl)) writes.push([key, value, ttl.value])
          else gone.push(key)
        }
        yield* entries.setMany(writes)
        yield* Effect.forEach(gone, (key) => entries.remove(key), { discard: true })
        return values.map(() => true)
      })
    )
  }

  /** Removes one entry; `true` when it existed. */
  delete(key: string): Promise<boolean> {
    return this.#run((entries) => entries.remove(key))
  }

  /** Removes each key; one boolean per key, `true` where it existed. */
  deleteMany(keys: Array<string>): Promise<Array<boolean>> {
    return this.#run((entries) => Effect.forEach(keys, (key) => entries.remove(key)))
  }

  /** Removes every entry of this namespace, and none of another. */
  clear(): Promise<void> {
    return this.#run((entries) => Effect.asVoid(entries.clear))
  }

  /**
   * The `[key, value]` pairs of a namespace (default this adapter's), oldest first. The keys are
   * listed when iteration starts; values are read a page at a time, so an entry removed meanwhile
   * is skipped. Needs the cache's `storeKeyParams` (the default): keys are read from them.
   */
  async *iterator<Value>(namespace?: string): AsyncGenerator<[string, Value], void> {
    const name = namespace ?? this.namespace ?? DEFAULT_NAMESPACE
    const run = <A>(f: (entries: Entries.Entries) => Effect.Effect<A, unknown>) =>
      this.client.run(Effect.flatMap(Cache, (cache) => f(Entries.make(cache, name))))
    const keys = await run((entries) => entries.keys)
    for (let start = 0; start < keys.length; start += PAGE) {
      const page = keys.slice(start, start + PAGE)
      const values = await run((entries) => entries.getMany(page))
      for (let i = 0; i < page.length; i++) {
        const value = values[i]
        if (Option.isSome(value)) yield [page[i], value.value as Value]
      }
    }
  }

  /** Closes the cache this adapter opened; a client passed in stays open (its owner closes it). */
  async disconnect(): Promise<void> {
    if (this.#owned) await this.client.close()
  }
}
