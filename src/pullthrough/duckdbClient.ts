/**
 * DuckDB (through `@duckdb/node-api`) as an `@effect/sql` `SqlClient`, so the statements written for
 * SQLite and PostgreSQL run unchanged on DuckDB.
 *
 * `@duckdb/node-api` is loaded when the first client is made, not when cacheness is imported: a
 * process that never pulls through would otherwise load its native library and keep 2.1 MB more
 * JavaScript heap, which every full garbage collection marks again (docs/PERFORMANCE.md, "Tables
 * (#21/#19), 2026-12-02 evening").
 *
 * @since 0.1.0
 */
import type * as DuckDB from "@duckdb/node-api"
import type { DuckDBType, DuckDBValue } from "@duckdb/node-api"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Client from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/**
 * @since 0.1.0
 * @category models
 */
export interface DuckDBClientConfig {
  /** A database file; `undefined` or `":memory:"` opens an in-memory database. */
  readonly filename?: string | undefined
  /** Prepared statements kept per connection. */
  readonly prepareCacheSize?: number | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DuckDBClient extends Client.SqlClient {
  readonly config: DuckDBClientConfig
}

/**
 * @since 0.1.0
 * @category tags
 */
export const DuckDBClient = Context.GenericTag<DuckDBClient>("cacheness/internal/DuckDBClient")

const escape = Statement.defaultEscape("\"")

// DuckDB speaks PostgreSQL's `$n` placeholders and `ON CONFLICT`, so the pg dialect is the right
// one for `sql.onDialect`; identifiers are quoted the same way.
const compiler = Statement.makeCompiler({
  dialect: "pg",
  placeholder: (i) => `$${i}`,
  onIdentifier: (value) => escape(value),
  onRecordUpdate: (placeholders, valueAlias, valueColumns, values, returning) => [
    `(values ${placeholders}) AS ${valueAlias}${valueColumns}${returning ? ` RETURNING ${returning[0]}` : ""}`,
    returning ? values.flat().concat(returning[1]) : values.flat()
  ],
  onCustom: () => {
    throw new Error("DuckDB client: custom statement fragments are not supported")
  }
})

type DuckDBModule = typeof DuckDB

/** `@duckdb/node-api`, imported once, by the first `make`. */
let loading: Promise<DuckDBModule> | undefined
const load = (): Promise<DuckDBModule> => loading ??= import("@duckdb/node-api")

const toDuckDB = (duck: DuckDBModule) => (value: unknown): DuckDBValue => {
  if (value === undefined) return null
  if (value instanceof Date) return new duck.DuckDBTimestampValue(BigInt(value.getTime()) * 1000n)
  return value as DuckDBValue
}

// DuckDB would bind a whole number beyond int64 as BIGINT and fail; such numbers are doubles.
const typeOf = (duck: DuckDBModule) => (value: unknown): DuckDBType | undefined =>
  typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value) ? duck.DOUBLE : undefined

// Integers arrive as bigint; hand out numbers when exact, as the other clients do.
const fromDuckDB = (value: unknown): unknown =>
  typeof value === "bigint" && value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(value)
    : value

const rowsOf = (reader: DuckDB.DuckDBResultReader): Array<Record<string, unknown>> => {
  const names = reader.columnNames()
  const columns = reader.getColumnsJS()
  const n = reader.currentRowCount
  const rows = new Array<Record<string, unknown>>(n)
  for (let r = 0; r < n; r++) {
    const row: Record<string, unknown> = {}
    for (let c = 0; c < names.length; c++) row[names[c]!] = fromDuckDB(columns[c]![r])
    rows[r] = row
  }
  return rows
}

const valuesOf = (reader: DuckDB.DuckDBResultReader): Array<Array<unknown>> =>
  reader.getRowsJS().map((row) => row.map(fromDuckDB))

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: DuckDBClientConfig = {}
): Effect.Effect<DuckDBClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const duck = yield* Effect.tryPromise({
      try: load,
      catch: (cause) => {
        loading = undefined
        return new SqlError({ cause, message: "Failed to load @duckdb/node-api" })
      }
    })
    const bindValue = toDuckDB(duck)
    const bindType = typeOf(duck)
    const instance = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => duck.DuckDBInstance.create(options.filename ?? ":memory:"),
        catch: (cause) =>
          new SqlError({ cause, message: `Failed to open DuckDB database ${options.filename ?? ":memory:"}` })
      }),
      (db) => Effect.sync(() => db.closeSync())
    )
    const db: DuckDB.DuckDBConnection = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => instance.connect(),
        catch: (cause) => new SqlError({ cause, message: "Failed to connect to DuckDB" })
      }),
      (c) => Effect.sync(() => c.closeSync())
    )

    // One connection: a bound prepared statement must run before anyone rebinds it.
    const running = yield* Effect.makeSemaphore(1)
    const capacity = options.prepareCacheSize ?? 200
    const prepared = new Map<string, DuckDB.DuckDBPreparedStatement>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const p of prepared.values()) p.destroySync()
        prepared.clear()
      })
    )

    const prepare = async (sql: string) => {
      let p = prepared.get(sql)
      if (p === undefined) {
        p = await db.prepare(sql)
        if (prepared.size >= capacity) {
          const [oldest, statement] = prepared.entries().next().value!
          prepared.delete(oldest)
          statement.destroySync()
        }
        prepared.set(sql, p)
      }
      return p
    }

    const run = <A>(
      sql: string,
      params: ReadonlyArray<unknown>,
      read: (r: DuckDB.DuckDBResultReader) => A,
      usePrepared = true
    ) =>
      running.withPermits(1)(Effect.tryPromise({
        try: async () => {
          if (!usePrepared || params.length === 0) {
            return read(
              await db.runAndReadAll(
                sql,
                params.length === 0 ? undefined : params.map(bindValue),
                params.map(bindType) as Array<DuckDBType>
              )
            )
          }
          const statement = await prepare(sql)
          statement.clearBindings()
          statement.bind(params.map(bindValue), params.map(bindType) as Array<DuckDBType>)
          return read(await statement.runAndReadAll())
        },
        catch: (cause) =>
          new SqlError({ cause, message: `Failed to execute statement: ${String((cause as Error)?.message ?? cause)}` })
      }))

    const connection: Connection = {
      execute: (sql, params, transformRows) =>
        transformRows ? Effect.map(run(sql, params, rowsOf), transformRows) : run(sql, params, rowsOf),
      executeRaw: (sql, params) => run(sql, params, (r) => r),
      executeValues: (sql, params) => run(sql, params, valuesOf),
      executeUnprepared: (sql, params, transformRows) => {
        const effect = run(sql, params ?? [], rowsOf, false)
        return transformRows ? Effect.map(effect, transformRows) : effect
      },
      executeStream: (sql, params, transformRows) =>
        Stream.fromIterableEffect(
          transformRows ? Effect.map(run(sql, params, rowsOf), transformRows) : run(sql, params, rowsOf)
        )
    }

    // Transactions hold the connection for their whole length; other statements wait.
    const transaction = yield* Effect.makeSemaphore(1)
    const acquirer = transaction.withPermits(1)(Effect.succeed(connection))
    const transactionAcquirer = Effect.uninterruptibleMask((restore) =>
      Effect.as(
        Effect.zipRight(
          restore(transaction.take(1)),
          Effect.tap(Effect.scope, (scope) => Scope.addFinalizer(scope, transaction.release(1)))
        ),
        connection
      )
    )

    const client = yield* Client.make({
      acquirer,
      compiler,
      transactionAcquirer,
      spanAttributes: [
        ...(options.spanAttributes ? Object.entries(options.spanAttributes) : []),
        ["db.system.name", "duckdb"]
      ]
    })
    return Object.assign(client, { config: options }) as DuckDBClient
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  config: DuckDBClientConfig = {}
): Layer.Layer<DuckDBClient | Client.SqlClient, SqlError> =>
  Layer.scopedContext(
    Effect.map(make(config), (client) => Context.make(DuckDBClient, client).pipe(Context.add(Client.SqlClient, client)))
  ).pipe(Layer.provide(Reactivity.layer))
