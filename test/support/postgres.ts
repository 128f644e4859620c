/**
 * PostgreSQL for tests, shared by every suite that runs against it.
 *
 * - `CACHENESS_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
 * - Reachability is checked once per test file (top-level await).
 * - `pgDescribe(name, fn)`: a `describe` that, when PostgreSQL is unreachable, is skipped with a
 *   visible message — but under `CI=true` it fails loudly instead, so CI never silently skips.
 * - `pgSchema(prefix)`: a fresh schema per suite (random name), created before and dropped after.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { afterAll, beforeAll } from "vitest"

/** The URL tests connect to. */
export const pgUrl: string = process.env.CACHENESS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const isCI = process.env.CI === "true"

const withClient = <A, E>(f: (sql: PgClient.PgClient) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1, connectTimeout: "3 seconds" }), f)
  ).pipe(
    Effect.provide(Reactivity.layer)
  )

const check = async (): Promise<{ ok: true } | { ok: false; reason: string }> => {
  const exit = await Effect.runPromiseExit(
    withClient((sql) => sql`SELECT 1 AS one`).pipe(Effect.timeout("5 seconds"))
  )
  if (exit._tag === "Success") return { ok: true }
  const squashed = exit.cause.toString().split("\n")[0] ?? "unknown error"
  return { ok: false, reason: squashed }
}

/** Whether PostgreSQL answered `SELECT 1` (checked once, when this module loads). */
export const pgStatus = await check()

/** `true` when PostgreSQL is reachable. */
export const pgAvailable: boolean = pgStatus.ok

const redactedUrl = pgUrl.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@")

/**
 * A `describe` for suites needing PostgreSQL: skipped (with a message) when it is unreachable,
 * failing under `CI=true`.
 */
export const pgDescribe = (name: string, fn: () => void): void => {
  if (pgStatus.ok) {
    describe(name, fn)
    return
  }
  const reason = pgStatus.reason
  if (isCI) {
    describe(name, () => {
      it("PostgreSQL is reachable", () => {
        throw new Error(
          `PostgreSQL at ${redactedUrl} is unreachable under CI=true (${reason}); set CACHENESS_TEST_PG_URL`
        )
      })
    })
    return
  }
  console.warn(
    `[cacheness tests] SKIPPING "${name}": PostgreSQL at ${redactedUrl} is unreachable (${reason}). Set CACHENESS_TEST_PG_URL or start PostgreSQL.`
  )
  describe.skip(name, fn)
}

/** Runs SQL against the test database (for setup/teardown). */
export const pgExec = (text: string): Promise<void> =>
  Effect.runPromise(withClient((sql) => Effect.asVoid(sql.unsafe(text))))

/**
 * A fresh schema name for the calling suite: created in `beforeAll`, dropped (CASCADE) in
 * `afterAll`. Call it inside a `pgDescribe` body.
 */
export const pgSchema = (prefix = "test"): string => {
  const name = `${prefix.replace(/[^A-Za-z0-9_]/g, "_").toLowerCase()}_${Math.random().toString(36).slice(2, 10)}`
  beforeAll(() => pgExec(`CREATE SCHEMA IF NOT EXISTS "${name}"`))
  afterAll(() => pgExec(`DROP SCHEMA IF EXISTS "${name}" CASCADE`))
  return name
}

/**
 * A fresh schema name for the scope of one test (created by whoever uses it first), dropped
 * (CASCADE) when the scope closes.
 */
export const pgScopedSchema = (prefix = "t") =>
  Effect.acquireRelease(
    Effect.sync(() =>
      `${prefix.replace(/[^A-Za-z0-9_]/g, "_").toLowerCase()}_${Math.random().toString(36).slice(2, 10)}`
    ),
    (name) => Effect.promise(() => pgExec(`DROP SCHEMA IF EXISTS "${name}" CASCADE`))
  )
