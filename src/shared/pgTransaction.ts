/**
 * `withTransaction` whose failed ROLLBACK stays a typed error. @effect/sql turns a ROLLBACK that
 * fails into a defect; on a connection that died mid-transaction (pg_terminate_backend, a
 * restart, a network cut) the ROLLBACK always fails, and the caller would get a defect instead of
 * the `SqlError` it maps to its own typed error. The server has already rolled the transaction
 * back when the connection went, so nothing is lost by reporting it as an ordinary failure.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/**
 * @since 0.1.0
 * @category transactions
 */
export const transaction = <A, E, R>(
  sql: SqlClient.SqlClient,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  sql.withTransaction(self).pipe(
    Effect.catchSomeDefect((defect) => defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none())
  )
