/**
 * `SqlPullThrough` on SQLite (better-sqlite3, WAL): one file, row-wise, no server.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { SqlPullThrough, SqlPullThroughError } from "./service.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface SqliteOptions {
  /** The database file (`":memory:"` for a private in-memory database). */
  readonly filename: string
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: SqliteOptions): Effect.Effect<SqlPullThrough.Service, SqlPullThroughError, Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqliteClient.make({ filename: options.filename })
    // Several processes may share the file: wait for a writer instead of failing at once.
    yield* sql.unsafe("PRAGMA busy_timeout = 5000")
    yield* sql.unsafe("PRAGMA synchronous = NORMAL")
    return { backend: "sqlite" as const, sql, schema: undefined }
  }).pipe(
    Effect.catchAllDefect((cause) => Effect.fail(cause)),
    Effect.mapError((cause) =>
      new SqlPullThroughError({
        reason: "ConnectionFailed",
        method: "SqlPullThrough.layerSqlite",
        description: `cannot open ${options.filename}: ${(cause as Error)?.message ?? String(cause)}`,
        cause
      })
    ),
    Effect.provide(Reactivity.layer)
  )

/**
 * @since 0.1.0
 * @category layers
 */
export const layerSqlite = (options: SqliteOptions): Layer.Layer<SqlPullThrough, SqlPullThroughError> =>
  Layer.scoped(SqlPullThrough, make(options))
