/**
 * `SqlPullThrough` on PostgreSQL: one cache shared by many processes and machines.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { SqlPullThrough, SqlPullThroughError } from "./service.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PgOptions {
  /** `postgres://user:pass@host:5432/db`; a `Redacted` keeps the password out of logs. */
  readonly url: string | Redacted.Redacted<string>
  /** Schema holding the cached tables and the ledger (created when missing); `public` by default. */
  readonly schema?: string | undefined
  readonly maxConnections?: number | undefined
}

/**
 * PostgreSQL support is an optional peer dependency: the driver loads on first use, so a program
 * that never uses PostgreSQL runs without it installed.
 */
const loadPgClient: Effect.Effect<typeof PgClient, SqlPullThroughError> = Effect.tryPromise({
  try: () => import("@effect/sql-pg/PgClient"),
  catch: (cause) =>
    new SqlPullThroughError({
      reason: "InvalidConfig",
      method: "SqlPullThrough.layerPg",
      description: "PostgreSQL support needs the optional peer dependency @effect/sql-pg (the Effect 3 line): npm install @effect/sql-pg@^0.53",
      cause
    })
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: PgOptions): Effect.Effect<SqlPullThrough.Service, SqlPullThroughError, Scope.Scope> =>
  Effect.gen(function*() {
    if (options.schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(options.schema)) {
      return yield* new SqlPullThroughError({
        reason: "InvalidConfig",
        method: "SqlPullThrough.layerPg",
        description: `schema ${JSON.stringify(options.schema)} must be a plain identifier`
      })
    }
    const url = typeof options.url === "string" ? Redacted.make(options.url) : options.url
    const { make: makePgClient } = yield* loadPgClient
    const sql = yield* makePgClient({ url, maxConnections: options.maxConnections ?? 4, applicationName: "cacheness" }).pipe(
      Effect.mapError((cause) =>
        new SqlPullThroughError({ reason: "ConnectionFailed", method: "SqlPullThrough.layerPg", description: cause.message, cause })
      )
    )
    if (options.schema !== undefined) {
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(options.schema)}`.pipe(
        Effect.mapError((cause) =>
          new SqlPullThroughError({ reason: "StorageFailed", method: "SqlPullThrough.layerPg", description: cause.message, cause })
        )
      )
    }
    return { backend: "postgres" as const, sql, schema: options.schema }
  }).pipe(Effect.provide(Reactivity.layer))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerPg = (options: PgOptions): Layer.Layer<SqlPullThrough, SqlPullThroughError> =>
  Layer.scoped(SqlPullThrough, make(options))
