/**
 * Loads `@effect/sql-pg` on first use. PostgreSQL support is an optional peer dependency: a
 * program that never opens a PostgreSQL backend runs without it (or the `pg` driver) installed.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
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
export const advice = "PostgreSQL support needs the optional peer dependency @effect/sql-pg (the Effect 3 line): npm install @effect/sql-pg@^0.53"

const loadFrom = (module: string): Effect.Effect<typeof PgClient, ConfigError> =>
  Effect.tryPromise({
    try: () => import(module) as Promise<typeof PgClient>,
    catch: (cause) => new ConfigError({ reason: "Unsupported", field: "metadataBackend", description: advice, cause })
  })
