/**
 * The Promise twin of `SqlPullThrough`: `pullThrough(config)` for plain async TypeScript.
 *
 * ```ts
 * const stocks = pullThrough({ backend: "duckdb", filename: "stocks.duckdb", table: Prices,
 *   query: (q) => ({ filters: { symbol: q.symbol }, range: { start: q.start, end: q.end } }),
 *   fetch: async ({ filters, range }) => api.prices(filters.symbol, range.start, range.end),
 *   ttl: "1 day" })
 * const rows = await stocks.get({ symbol: "AAPL", start: "2024-01-01", end: "2024-03-31" })
 * await stocks.close()
 * ```
 *
 * @since 0.1.0
 */
import type { Table as ArrowTable } from "apache-arrow"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import { layerDuckDB } from "./duckdb.js"
import { layerPg } from "./pg.js"
import {
  type Backend,
  type FetchRequest,
  make,
  type MakeOptions,
  type PullThrough,
  type PullThroughStats,
  type PullThroughTable,
  type Range,
  SqlPullThrough,
  SqlPullThroughError
} from "./service.js"
import { layerSqlite } from "./sqlite.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PullThroughConfig<T extends PullThroughTable.Any, Q>
  extends Omit<MakeOptions<T, Q, SqlPullThroughError>, "fetch" | "retry">
{
  /** Default `"duckdb"` (in memory unless `filename`). */
  readonly backend?: Backend | undefined
  /** DuckDB or SQLite database file (required for SQLite). */
  readonly filename?: string | undefined
  /** PostgreSQL URL (required for `"postgres"`). */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** PostgreSQL schema. */
  readonly schema?: string | undefined
  /** Fetches one gap; may return rows or a Promise of rows. A rejection becomes a `FetchFailed` error. */
  readonly fetch: (
    request: FetchRequest<T>
  ) => Promise<ReadonlyArray<PullThroughTable.Row<T>>> | ReadonlyArray<PullThroughTable.Row<T>>
  readonly retry?: Schedule.Schedule<unknown, SqlPullThroughError> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PullThroughClient<T extends PullThroughTable.Any, Q> {
  readonly get: (query: Q) => Promise<ReadonlyArray<PullThroughTable.Row<T>>>
  readonly getArrow: (query: Q) => Promise<ArrowTable>
  readonly refresh: (query: Q) => Promise<ReadonlyArray<PullThroughTable.Row<T>>>
  readonly missing: (query: Q) => Promise<ReadonlyArray<Range<PullThroughTable.RangeValue<T>>>>
  readonly invalidate: (
    filters: PullThroughTable.Filters<T>,
    range?: Range<PullThroughTable.RangeInput<T>>
  ) => Promise<number>
  readonly cleanupExpired: () => Promise<number>
  readonly clear: () => Promise<number>
  readonly stats: () => Promise<PullThroughStats>
  /** Closes the database connection(s). */
  readonly close: () => Promise<void>
}

const layerFor = (
  config: PullThroughConfig<any, any>
): Layer.Layer<SqlPullThrough, SqlPullThroughError> | SqlPullThroughError => {
  const backend = config.backend ?? "duckdb"
  switch (backend) {
    case "duckdb":
      return layerDuckDB({ filename: config.filename })
    case "sqlite":
      return config.filename === undefined
        ? new SqlPullThroughError({
          reason: "InvalidConfig",
          method: "pullThrough",
          description: `backend "sqlite" needs a filename`
        })
        : layerSqlite({ filename: config.filename })
    case "postgres":
      return config.url === undefined
        ? new SqlPullThroughError({
          reason: "InvalidConfig",
          method: "pullThrough",
          description: `backend "postgres" needs a url`
        })
        : layerPg({ url: config.url, schema: config.schema })
    default:
      return new SqlPullThroughError({
        reason: "InvalidConfig",
        method: "pullThrough",
        description: `unknown backend ${JSON.stringify(backend)}`
      })
  }
}

/**
 * Opens a pull-through table cache with a Promise API; errors reject with `SqlPullThroughError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pullThrough = <T extends PullThroughTable.Any, Q>(
  config: PullThroughConfig<T, Q>
): PullThroughClient<T, Q> => {
  const layer = layerFor(config)
  if (layer instanceof SqlPullThroughError) throw layer
  const runtime = ManagedRuntime.make(layer)
  const { backend: _b, filename: _f, url: _u, schema: _s, fetch, ...options } = config
  const made = runtime.runPromiseExit(
    make<T, Q, SqlPullThroughError>({
      ...options,
      fetch: (request) =>
        Effect.tryPromise({
          try: async () => fetch(request),
          catch: (cause) =>
            new SqlPullThroughError({
              reason: "FetchFailed",
              method: "SqlPullThrough.fetch",
              table: config.table.name,
              description: cause instanceof Error ? cause.message : String(cause),
              cause
            })
        })
    })
  )
  let handle: PullThrough<T, Q, SqlPullThroughError> | undefined
  // One effect per call (runPromise costs ~5 µs): the handle is resolved once, then reused.
  const run = async <A>(
    f: (h: PullThrough<T, Q, SqlPullThroughError>) => Effect.Effect<A, SqlPullThroughError>
  ): Promise<A> => {
    if (handle === undefined) {
      const exit = await made
      if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
      handle = exit.value
    }
    const exit = await runtime.runPromiseExit(f(handle))
    if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
    return exit.value
  }
  return {
    get: (query) => run((h) => h.get(query)),
    getArrow: (query) => run((h) => h.getArrow(query)),
    refresh: (query) => run((h) => h.refresh(query)),
    missing: (query) => run((h) => h.missing(query)),
    invalidate: (filters, range) => run((h) => h.invalidate(filters, range)),
    cleanupExpired: () => run((h) => h.cleanupExpired()),
    clear: () => run((h) => h.clear()),
    stats: () => run((h) => h.stats()),
    close: async () => {
      await made.catch(() => undefined)
      await runtime.dispose()
    }
  }
}
