/**
 * `SqlPullThrough` on DuckDB, the embedded default: columnar, fast scans of cached ranges.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as DuckDBClient from "./duckdbClient.js"
import { SqlPullThrough, SqlPullThroughError } from "./service.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface DuckDBOptions {
  /** The database file; an in-memory database when omitted. */
  readonly filename?: string | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: DuckDBOptions = {}
): Effect.Effect<SqlPullThrough.Service, SqlPullThroughError, Scope.Scope> =>
  DuckDBClient.make({ filename: options.filename }).pipe(
    Effect.map((sql) => ({ backend: "duckdb" as const, sql, schema: undefined })),
    Effect.mapError((cause) =>
      new SqlPullThroughError({
        reason: "ConnectionFailed",
        method: "SqlPullThrough.layerDuckDB",
        description: cause.message,
        cause
      })
    ),
    Effect.provide(Reactivity.layer)
  )

/**
 * @since 0.1.0
 * @category layers
 */
export const layerDuckDB = (options: DuckDBOptions = {}): Layer.Layer<SqlPullThrough, SqlPullThroughError> =>
  Layer.scoped(SqlPullThrough, make(options))
