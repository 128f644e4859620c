/**
 * `SqlPullThrough` on PostgreSQL: one cache shared by many processes and machines.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as PgPool from "../shared/pgClient.js"
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
  /** Connections this cache may use at once. Default 4; a pool shared with a cache on the same URL takes the largest request. */
  readonly maxConnections?: number | undefined
}

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
    // The pool a cache on the same URL uses, if one is open: one set of connections per process.
    const sql = yield* PgPool.acquire({ url, maxConnections: options.maxConnections ?? 4 }).pipe(
      Effect.catchTags({
        // PostgreSQL support is an optional peer dependency, loaded on first use.
        ConfigError: (cause) =>
          Effect.fail(
            new SqlPullThroughError({
              reason: "InvalidConfig",
              method: "SqlPullThrough.layerPg",
              description: PgPool.advice,
              cause
            })
          ),
        SqlError: (cause) =>
          Effect.fail(
            new SqlPullThroughError({
              reason: "ConnectionFailed",
              method: "SqlPullThrough.layerPg",
              description: cause.message,
              cause
            })
          )
      })
    )
    if (options.schema !== undefined) {
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(options.schema)}`.pipe(
        Effect.mapError((cause) =>
          new SqlPullThroughError({
            reason: "StorageFailed",
            method: "SqlPullThrough.layerPg",
            description: cause.message,
            cause
          })
        )
      )
    }
    return { backend: "postgres" as const, sql, schema: options.schema }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerPg = (options: PgOptions): Layer.Layer<SqlPullThrough, SqlPullThroughError> =>
  Layer.scoped(SqlPullThrough, make(options))
