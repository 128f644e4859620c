/**
 * Loads `@effect/sql-pg` on first use. PostgreSQL support is an optional peer dependency: a
 * program that never opens a PostgreSQL backend runs without it (or the `pg` driver) installed.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"

/**
 * @since 0.1.0
 * @category loading
 */
export const load: Effect.Effect<typeof PgClient, Error> = Effect.tryPromise({
  try: () => import("@effect/sql-pg/PgClient"),
  catch: (cause) => new Error("PostgreSQL support needs the optional dependency @effect/sql-pg: npm install @effect/sql-pg", { cause })
})
