/**
 * One PostgreSQL pool per URL, shared by every store of the process that connects there.
 *
 * A cache on PostgreSQL has a metadata store and a blob store, and a program may add a
 * pull-through cache on the same database: each used to open its own pool, so one cache held two
 * (or three) sets of connections to one server. `acquire` hands out one `PgClient` per URL and
 * connection settings, counted by reference (an `RcMap`): the pool opens with its first holder's
 * scope and closes with its last one's.
 *
 * `@effect/sql-pg` is an optional peer dependency, loaded on first use: a program that never opens
 * a PostgreSQL backend runs without it (or the `pg` driver) installed.
 *
 * The pool is built here rather than by `PgClient.make` so that it can pass `allowExitOnIdle`:
 * without it idle connections hold the process open until `idleTimeout`, and a script that ends
 * without `close()` would hang that long.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import type * as PgClient from "@effect/sql-pg/PgClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as RcMap from "effect/RcMap"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { createRequire } from "node:module"
import { pathToFileURL } from "node:url"
import { ConfigError } from "../errors.js"

/**
 * @since 0.1.0
 * @category loading
 */
export const load: Effect.Effect<typeof PgClient, ConfigError> = Effect.suspend(() => loadFrom(specifier))

/** What `load` imports; a test points it at a module that does not exist. */
let specifier = "@effect/sql-pg/PgClient"

/**
 * @since 0.1.0
 * @category testing
 */
export const unsafeSetSpecifier = (module: string): void => {
  specifier = module
}

/** The line of `@effect/sql-pg` built on Effect 3: a bare `npm install` takes the Effect 4 line. */
export const advice =
  "PostgreSQL support needs the optional peer dependency @effect/sql-pg (the Effect 3 line): npm install @effect/sql-pg@^0.53"

const unsupported = (cause: unknown) =>
  new ConfigError({ reason: "Unsupported", field: "metadataBackend", description: advice, cause })

const loadFrom = (module: string): Effect.Effect<typeof PgClient, ConfigError> =>
  Effect.tryPromise({ try: () => import(module) as Promise<typeof PgClient>, catch: unsupported })

/** The part of `pg`'s `Pool` used here (the driver ships no types of its own). */
interface Pool {
  readonly options: { max: number }
  on(event: "error", listener: (error: Error) => void): unknown
  query(text: string): Promise<unknown>
  end(): Promise<void>
}

type PoolConstructor = new(config: Record<string, unknown>) => Pool

/**
 * `pg` as `@effect/sql-pg` itself resolves it: cacheness does not depend on the driver directly,
 * and under a strict layout (pnpm) only the package that declares it can import it.
 */
const loadPool = (module: string): Effect.Effect<PoolConstructor, ConfigError> =>
  Effect.tryPromise({
    try: async () => {
      const client = createRequire(import.meta.url).resolve(module)
      const driver = createRequire(client).resolve("pg")
      const pg = await import(pathToFileURL(driver).href)
      return (pg.default ?? pg).Pool as PoolConstructor
    },
    catch: unsupported
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface PoolOptions {
  /** `postgres://user:pass@host:5432/db`. */
  readonly url: Redacted.Redacted<string>
  /** Connections this holder may want at once; a shared pool grows to the largest request. */
  readonly maxConnections: number
  readonly minConnections?: number | undefined
  /** Default 30 seconds. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** Default 10 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  readonly connectionTTL?: Duration.DurationInput | undefined
}

/** What identifies a pool: holders with the same URL and connection settings share one. */
interface Settings {
  readonly url: string
  readonly min: number | null
  readonly idleMillis: number
  readonly connectMillis: number
  readonly lifetimeSeconds: number | null
}

interface Shared {
  readonly client: PgClient.PgClient
  readonly pool: Pool
}

const millis = (input: Duration.DurationInput) => Duration.toMillis(Duration.decode(input))

/**
 * Opens the pool a key describes. It starts at its minimum size: every holder, the first
 * included, raises it to what it asks for once it has the pool.
 */
const open = (key: string): Effect.Effect<Shared, ConfigError | SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings: Settings = JSON.parse(key)
    const PgClient = yield* load
    const Pool = yield* loadPool(specifier)
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new Pool({
          connectionString: settings.url,
          connectionTimeoutMillis: settings.connectMillis,
          idleTimeoutMillis: settings.idleMillis,
          max: Math.max(1, settings.min ?? 0),
          min: settings.min ?? undefined,
          maxLifetimeSeconds: settings.lifetimeSeconds ?? undefined,
          application_name: "cacheness",
          allowExitOnIdle: true
        })
        // A pooled connection that dies while idle emits "error" on the pool; unhandled, Node
        // would crash the process. The next query on it fails and is retried (see pgRetry.ts).
        pool.on("error", () => {})
        opened++
        return pool
      }),
      (pool) =>
        Effect.promise(() => pool.end()).pipe(
          Effect.interruptible,
          Effect.timeoutOption(1000),
          Effect.ensuring(Effect.sync(() => opened--))
        )
    )
    yield* Effect.tryPromise({
      try: () => pool.query("SELECT 1"),
      catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
    }).pipe(
      Effect.timeoutFail({
        duration: settings.connectMillis,
        onTimeout: () =>
          new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
      })
    )
    const client = yield* PgClient.fromPool({ acquire: Effect.succeed(pool), applicationName: "cacheness" }).pipe(
      Effect.provide(Reactivity.layer)
    )
    return { client, pool }
  })

/** Pools currently open; what `unsafeOpenPools` reports. */
let opened = 0

/**
 * The process-wide registry. Its own scope never closes: each pool is released by the scopes of
 * its holders, so nothing outlives the last of them.
 */
let registry: RcMap.RcMap<string, Shared, ConfigError | SqlError> | undefined

const pools = Effect.sync(() => {
  if (registry === undefined) {
    registry = Effect.runSync(Scope.extend(RcMap.make({ lookup: open }), Effect.runSync(Scope.make())))
  }
  return registry
})

/**
 * The client for a URL and connection settings, shared with every other holder in the process;
 * the pool closes when the last holder's scope does. A missing `@effect/sql-pg` is a
 * `ConfigError`, a server that cannot be reached an `SqlError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const acquire = (options: PoolOptions): Effect.Effect<PgClient.PgClient, ConfigError | SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings: Settings = {
      url: Redacted.value(options.url),
      min: options.minConnections ?? null,
      idleMillis: millis(options.idleTimeout ?? "30 seconds"),
      connectMillis: millis(options.connectTimeout ?? "10 seconds"),
      lifetimeSeconds: options.connectionTTL === undefined ? null : millis(options.connectionTTL) / 1000
    }
    const shared = yield* RcMap.get(yield* pools, JSON.stringify(settings))
    // pg reads `max` whenever it decides whether to open a connection, so raising it takes effect
    // at once. It is not lowered when a holder leaves: the pool only lives while it is shared.
    shared.pool.options.max = Math.max(shared.pool.options.max, options.maxConnections)
    return shared.client
  })

/**
 * How many pools are open in this process, for tests that check that stores share one.
 *
 * @since 0.1.0
 * @category testing
 */
export const unsafeOpenPools = (): number => opened

/**
 * The part of `pg`'s `Client` a dedicated LISTEN connection uses (see `metadata/pgChanges.ts`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ListenClient {
  connect(): Promise<void>
  query(text: string): Promise<unknown>
  end(): Promise<void>
  unref(): void
  on(event: "notification", listener: (message: { channel: string; payload?: string | undefined }) => void): unknown
  on(event: "error" | "end", listener: (error?: Error) => void): unknown
}

/**
 * `pg`'s `Client` constructor, resolved as the pool's driver is (through `@effect/sql-pg`).
 *
 * @since 0.1.0
 * @category loading
 */
export const loadClient: Effect.Effect<new(config: Record<string, unknown>) => ListenClient, ConfigError> = Effect
  .suspend(() =>
    Effect.tryPromise({
      try: async () => {
        const client = createRequire(import.meta.url).resolve(specifier)
        const driver = createRequire(client).resolve("pg")
        const pg = await import(pathToFileURL(driver).href)
        return (pg.default ?? pg).Client as new(config: Record<string, unknown>) => ListenClient
      },
      catch: unsupported
    })
  )
