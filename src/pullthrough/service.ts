/**
 * A range-aware pull-through table cache: repeated queries against a slow, rate-limited source
 * (prices, weather, metrics) are answered from a local SQL table, and only the ranges not yet
 * fetched are requested. A coverage ledger, separate from the rows, records which intervals were
 * fetched and until when they are fresh, so ranges where the source has no rows count as covered.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Table as ArrowTable } from "apache-arrow"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { ConfigError } from "../cache/service.js"
import * as Validate from "../shared/validate.js"
import { toArrow } from "./arrow.js"
import { type Column, columnsOf, isIdentifier } from "./columns.js"
import * as Ranges from "./ranges.js"
import * as Q from "./sql.js"

import { SqlPullThroughError } from "../errors.js"

export { SqlPullThroughError }

/**
 * @since 0.1.0
 * @category models
 */
export type Backend = "duckdb" | "sqlite" | "postgres"

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace SqlPullThrough {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly backend: Backend
    /** The client every table cache of this layer runs its statements on. */
    readonly sql: SqlClient.SqlClient
    /** The PostgreSQL schema tables live in; `undefined` for the default. */
    readonly schema: string | undefined
  }
}

/**
 * A SQL backend (DuckDB, SQLite or PostgreSQL) holding cached tables and their coverage ledger.
 *
 * @since 0.1.0
 * @category tags
 */
export class SqlPullThrough extends Context.Tag("cacheness/SqlPullThrough")<SqlPullThrough, SqlPullThrough.Service>() {}

/**
 * A step as users write it: a duration or calendar months for time ranges, a number for numeric ones.
 *
 * @since 0.1.0
 * @category models
 */
export type Step<V> = V extends Date ? Ranges.StepInput : number

/**
 * Columns whose values can be a range: times and numbers.
 *
 * @since 0.1.0
 * @category models
 */
export type RangeColumn<A> = { [K in keyof A]-?: A[K] extends Date | number ? K : never }[keyof A] & string

/**
 * A table to cache: its columns as a Schema struct, primary key and range column.
 *
 * @since 0.1.0
 * @category models
 */
export interface PullThroughTable<A, I, RC extends RangeColumn<A>> {
  readonly name: string
  readonly columns: Schema.Schema<A, I, never> & { readonly fields: Schema.Struct.Fields }
  readonly primaryKey: ReadonlyArray<keyof A & string>
  readonly range: {
    readonly column: RC
    /** Requests are aligned to this grid: `"1 day"`, `"1 hour"`, `"1 month"`, `{ months: 3 }`, `1`, `0.5`. */
    readonly step: Step<A[RC]>
    /** Where the grid starts (epoch by default; Mondays for whole-week steps). */
    readonly origin?: A[RC] | undefined
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace PullThroughTable {
  /**
   * @since 0.1.0
   * @category models
   */
  export type Any = PullThroughTable<any, any, any>
  /**
   * @since 0.1.0
   * @category models
   */
  export type Row<T> = T extends PullThroughTable<infer A, any, any> ? A : never
  /**
   * @since 0.1.0
   * @category models
   */
  export type RangeValue<T> = T extends PullThroughTable<infer A, any, infer RC> ? A[RC] : never
  /**
   * Equality filters on the non-range columns.
   *
   * @since 0.1.0
   * @category models
   */
  export type Filters<T> = T extends PullThroughTable<infer A, any, infer RC> ?
    { readonly [K in Exclude<keyof A, RC>]?: A[K] }
    : never
  /**
   * A range bound as requested: dates also accept ISO strings and epoch milliseconds.
   *
   * @since 0.1.0
   * @category models
   */
  export type RangeInput<T> = RangeValue<T> extends Date ? Date | string | number : number
}

/**
 * Declares a table to cache.
 *
 * @since 0.1.0
 * @category constructors
 */
export const table = <Fields extends Schema.Struct.Fields, const RC extends RangeColumn<Schema.Struct.Type<Fields>>>(
  options: {
    readonly name: string
    readonly columns: Schema.Struct<Fields>
    readonly primaryKey: ReadonlyArray<keyof Fields & string>
    readonly range: {
      readonly column: RC
      readonly step: Step<Schema.Struct.Type<Fields>[RC]>
      readonly origin?: Schema.Struct.Type<Fields>[RC] | undefined
    }
  }
): PullThroughTable<Schema.Struct.Type<Fields>, Schema.Struct.Encoded<Fields>, RC> => options as any

/**
 * What `fetch` receives: the filters and the inclusive, step-aligned range of one gap.
 * `endExclusive` is where the last step ends (for sources that take half-open ranges).
 *
 * @since 0.1.0
 * @category models
 */
export interface FetchRequest<T extends PullThroughTable.Any> {
  readonly filters: PullThroughTable.Filters<T>
  readonly range: {
    readonly start: PullThroughTable.RangeValue<T>
    readonly end: PullThroughTable.RangeValue<T>
    readonly endExclusive: PullThroughTable.RangeValue<T>
  }
}

/**
 * An inclusive range in the range column's type.
 *
 * @since 0.1.0
 * @category models
 */
export interface Range<V> {
  readonly start: V
  readonly end: V
}

/**
 * How long fetched data stays fresh: a duration, `null` (never expires), an age policy from
 * `ttlByAge` (intervals are split at the tier boundaries), or a function of the interval.
 *
 * @since 0.1.0
 * @category models
 */
export type TtlPolicy<V> =
  | Duration.DurationInput
  | null
  | Ranges.TtlByAge
  | ((
    interval: { readonly start: V; readonly end: V; readonly age: Duration.Duration }
  ) => Duration.DurationInput | null)

/**
 * Age-based TTL: recent data expires sooner, old data can be final (`ttl: null`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const ttlByAge: (options: {
  readonly recent: Duration.DurationInput | null
  readonly tiers: ReadonlyArray<
    { readonly olderThan: Duration.DurationInput; readonly ttl: Duration.DurationInput | null }
  >
}) => Ranges.TtlByAge = Ranges.ttlByAge

/**
 * Progress of a `get` that fetches several gaps.
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress<V> {
  readonly table: string
  readonly gap: Range<V>
  readonly done: number
  readonly total: number
  readonly rows: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions<T extends PullThroughTable.Any, Q, E> {
  readonly table: T
  /** Maps a user query to equality filters and an inclusive range. */
  readonly query: (query: Q) => {
    readonly filters: PullThroughTable.Filters<T>
    readonly range: { readonly start: PullThroughTable.RangeInput<T>; readonly end: PullThroughTable.RangeInput<T> }
  }
  /** Fetches one gap from the source; rows outside the gap are stored but do not extend coverage. */
  readonly fetch: (request: FetchRequest<T>) => Effect.Effect<ReadonlyArray<PullThroughTable.Row<T>>, E>
  /** Default `"24 hours"`. */
  readonly ttl?: TtlPolicy<PullThroughTable.RangeValue<T>> | undefined
  /** Gaps separated by at most this many covered steps are fetched as one (default 0). */
  readonly mergeTolerance?: number | undefined
  /** Largest span, in steps, of one fetch; larger gaps are split. */
  readonly maxStepsPerFetch?: number | undefined
  /** Gaps fetched at once (default 4). */
  readonly concurrency?: number | undefined
  /** Retry policy for a failing fetch (default: 2 retries, exponential from 100 ms). */
  readonly retry?: Schedule.Schedule<unknown, E> | undefined
  /** Replaces the computed gaps; results are clipped to the request and aligned to the step. */
  readonly detectGaps?:
    | ((input: {
      readonly requested: Range<PullThroughTable.RangeValue<T>>
      readonly covered: ReadonlyArray<Range<PullThroughTable.RangeValue<T>>>
      readonly gaps: ReadonlyArray<Range<PullThroughTable.RangeValue<T>>>
    }) => ReadonlyArray<Range<PullThroughTable.RangeValue<T>>>)
    | undefined
  readonly onProgress?: ((progress: Progress<PullThroughTable.RangeValue<T>>) => void) | undefined
}

const MAKE_FIELDS = [
  "table",
  "query",
  "fetch",
  "ttl",
  "mergeTolerance",
  "maxStepsPerFetch",
  "concurrency",
  "retry",
  "detectGaps",
  "onProgress"
] as const

/**
 * @since 0.1.0
 * @category models
 */
export interface PullThroughStats {
  readonly table: string
  readonly backend: Backend
  readonly rows: number
  /** Ledger intervals, fresh or not. */
  readonly intervals: number
  readonly freshIntervals: number
  readonly filterSets: number
  readonly lastFetchAt: Date | null
  /** Since this handle was made, in this process: */
  readonly hits: number
  readonly misses: number
  readonly fetches: number
  readonly rowsFetched: number
}

/**
 * A table cache: `get` answers from the table, fetching only what is missing or stale.
 *
 * @since 0.1.0
 * @category models
 */
export interface PullThrough<T extends PullThroughTable.Any, Q, E> {
  readonly table: T
  readonly get: (query: Q) => Effect.Effect<ReadonlyArray<PullThroughTable.Row<T>>, E | SqlPullThroughError>
  readonly getArrow: (query: Q) => Effect.Effect<ArrowTable, E | SqlPullThroughError>
  /** Refetches the whole range, fresh or not, and returns it. */
  readonly refresh: (query: Q) => Effect.Effect<ReadonlyArray<PullThroughTable.Row<T>>, E | SqlPullThroughError>
  /** Fetches the gaps of a query without reading rows; returns the gaps fetched. */
  readonly fetchMissing: (
    query: Q
  ) => Effect.Effect<ReadonlyArray<Range<PullThroughTable.RangeValue<T>>>, E | SqlPullThroughError>
  /** The gaps a `get` would fetch now. */
  readonly missing: (
    query: Q
  ) => Effect.Effect<ReadonlyArray<Range<PullThroughTable.RangeValue<T>>>, SqlPullThroughError>
  /** Keeps a hot range fresh: gap-fetch on every tick of `schedule`, for the scope's lifetime. */
  readonly schedule: <X>(
    query: Q,
    schedule: Schedule.Schedule<X, unknown>,
    options?: { readonly force?: boolean | undefined }
  ) => Effect.Effect<Fiber.RuntimeFiber<X, never>, never, Scope.Scope>
  /** Drops rows and coverage of every filter set containing `filters` (optionally only in `range`); returns rows removed. */
  readonly invalidate: (
    filters: PullThroughTable.Filters<T>,
    range?: Range<PullThroughTable.RangeInput<T>>
  ) => Effect.Effect<number, SqlPullThroughError>
  /** Drops expired coverage and the rows no fresh interval covers; returns intervals removed. */
  readonly cleanupExpired: () => Effect.Effect<number, SqlPullThroughError>
  /** Drops every row and interval of the table; returns rows removed. */
  readonly clear: () => Effect.Effect<number, SqlPullThroughError>
  readonly stats: () => Effect.Effect<PullThroughStats, SqlPullThroughError>
}

interface Resolved {
  readonly filters: Record<string, unknown>
  readonly filterSql: ReadonlyArray<readonly [string, unknown]>
  readonly filtersKey: string
  readonly requested: Ranges.Interval
}

const DEFAULT_RETRY = Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(2)))

/**
 * Builds a table cache on the `SqlPullThrough` backend, creating its tables when missing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <T extends PullThroughTable.Any, Q, E>(
  options: MakeOptions<T, Q, E>
): Effect.Effect<PullThrough<T, Q, E>, SqlPullThroughError, SqlPullThrough> =>
  Effect.gen(function*() {
    const backend = yield* SqlPullThrough
    const { sql } = backend
    const def = options.table as PullThroughTable<any, unknown, any>
    const tableName = def.name
    const invalid = (method: string, description: string) =>
      new SqlPullThroughError({ reason: "InvalidTable", method, table: tableName, description })

    // --- the table definition, checked once ---
    if (!isIdentifier(tableName) || tableName.startsWith("cacheness_")) {
      return yield* invalid(
        "SqlPullThrough.make",
        `table name ${JSON.stringify(tableName)} must be a plain identifier not starting with "cacheness_"`
      )
    }
    const columns = columnsOf(def.columns as unknown as Schema.Struct<any>)
    const byName = new Map(columns.map((c) => [c.name, c]))
    const badColumn = columns.find((c) => !isIdentifier(c.name))
    if (badColumn) {
      return yield* invalid(
        "SqlPullThrough.make",
        `column name ${JSON.stringify(badColumn.name)} is not a plain identifier`
      )
    }
    if (def.primaryKey.length === 0 || def.primaryKey.some((k) => !byName.has(k))) {
      return yield* invalid(
        "SqlPullThrough.make",
        `primary key [${def.primaryKey.join(", ")}] must name columns of the table`
      )
    }
    const rangeColumn = byName.get(def.range.column)
    if (rangeColumn === undefined || (rangeColumn.kind !== "date" && rangeColumn.kind !== "number")) {
      return yield* invalid(
        "SqlPullThrough.make",
        `range column ${JSON.stringify(def.range.column)} must be a Date or number column`
      )
    }
    const kind = rangeColumn.kind
    const origin = def.range.origin === undefined ? undefined : rangeColumn.toSql(def.range.origin) as number
    const grid = Ranges.makeGrid(kind, def.range.step, origin)
    if (grid === undefined) {
      return yield* invalid(
        "SqlPullThrough.make",
        `step ${JSON.stringify(def.range.step)} is not valid for a ${kind} range`
      )
    }
    // Unknown fields (a misspelt `tll`) and a negative, NaN or too-long TTL are refused here, as
    // the cache's own options are.
    const known = Validate.options("SqlPullThrough.make", options, MAKE_FIELDS)
    const fixedTtl = known instanceof ConfigError || typeof known.ttl === "function" ||
        (typeof known.ttl === "object" && known.ttl !== null && "_tag" in known.ttl && known.ttl._tag === "TtlByAge")
      ? undefined
      : Validate.ttl("SqlPullThrough.make.ttl", known.ttl)
    for (const problem of [known, fixedTtl]) {
      if (problem instanceof ConfigError) {
        return yield* new SqlPullThroughError({
          reason: "InvalidConfig",
          method: "SqlPullThrough.make",
          table: tableName,
          description: `${problem.field}: ${problem.description}`
        })
      }
    }
    const mergeTolerance = options.mergeTolerance ?? 0
    const concurrency = options.concurrency ?? 4
    const retry = (options.retry ?? DEFAULT_RETRY) as Schedule.Schedule<unknown, E>
    const ttl = options.ttl === undefined ? "24 hours" : options.ttl
    const rowSchema = Schema.Array(Schema.typeSchema(def.columns as Schema.Schema<any, any, never>))
    const validateRows = Schema.validate(rowSchema)

    const qualify = (name: string) => (backend.schema === undefined ? name : `${backend.schema}.${name}`)
    const names: Q.Names = { table: tableName, data: qualify(tableName), ledger: qualify(Q.LEDGER) }
    const storage = (method: string) => (cause: SqlError) =>
      new SqlPullThroughError({ reason: "StorageFailed", method, table: tableName, description: cause.message, cause })

    yield* Q.ensureTables(sql, names, columns, def.primaryKey).pipe(Effect.mapError(storage("SqlPullThrough.make")))

    // --- conversions between range values, grid indices and SQL ---
    const toValue = (ms: number): unknown => (kind === "date" ? new Date(ms) : ms)
    const rangeOf = (i: Ranges.Interval) => ({
      start: toValue(Ranges.valueOf(grid, i.lo)),
      end: toValue(Ranges.valueOf(grid, i.hi))
    })
    const bound = (method: string, input: unknown): Effect.Effect<number, SqlPullThroughError> => {
      const n = kind === "date"
        ? input instanceof Date
          ? input.getTime()
          : typeof input === "string" || typeof input === "number"
          ? new Date(input).getTime()
          : NaN
        : typeof input === "number"
        ? input
        : NaN
      return Number.isFinite(n)
        ? Effect.succeed(n)
        : Effect.fail(
          new SqlPullThroughError({
            reason: "InvalidQuery",
            method,
            table: tableName,
            description: `${JSON.stringify(input)} is not a valid ${kind} range bound`
          })
        )
    }

    const filtersOf = (method: string, filters: Record<string, unknown>) =>
      Effect.gen(function*() {
        const pairs: Array<readonly [string, unknown]> = []
        for (const name of Object.keys(filters).sort()) {
          const column = byName.get(name)
          if (column === undefined || name === rangeColumn.name) {
            return yield* new SqlPullThroughError({
              reason: "InvalidQuery",
              method,
              table: tableName,
              description: `filter ${JSON.stringify(name)} is not a non-range column of the table`
            })
          }
          if (filters[name] === undefined) continue
          pairs.push([name, column.toSql(filters[name])])
        }
        return pairs
      })
    const keyOf = (pairs: ReadonlyArray<readonly [string, unknown]>) => JSON.stringify(pairs)

    const resolve = (method: string, query: Q) =>
      Effect.gen(function*() {
        const mapped = yield* Effect.try({
          try: () => options.query(query),
          catch: (cause) =>
            new SqlPullThroughError({
              reason: "InvalidQuery",
              method,
              table: tableName,
              description: `query mapping threw: ${String(cause)}`,
              cause
            })
        })
        const filters = (mapped.filters ?? {}) as Record<string, unknown>
        const filterSql = yield* filtersOf(method, filters)
        const start = yield* bound(method, mapped.range.start)
        const end = yield* bound(method, mapped.range.end)
        const requested = { lo: Ranges.indexOf(grid, start), hi: Ranges.indexOf(grid, end) }
        if (requested.lo > requested.hi) {
          return yield* new SqlPullThroughError({
            reason: "InvalidQuery",
            method,
            table: tableName,
            description: `range start ${JSON.stringify(mapped.range.start)} is after its end ${
              JSON.stringify(mapped.range.end)
            }`
          })
        }
        return { filters, filterSql, filtersKey: keyOf(filterSql), requested } satisfies Resolved
      })

    // --- coverage ---
    const toInterval = (row: { range_start: unknown; range_end: unknown }): Ranges.Interval => ({
      lo: Ranges.indexOf(grid, Number(row.range_start)),
      hi: Ranges.indexOf(grid, Number(row.range_end)) - 1
    })
    const freshCoverage = (r: Resolved, now: number) =>
      Q.ledgerOverlapping(
        sql,
        names,
        r.filtersKey,
        Ranges.valueOf(grid, r.requested.lo),
        Ranges.valueOf(grid, r.requested.hi + 1),
        now
      ).pipe(
        Effect.map((rows) => rows.map(toInterval)),
        Effect.mapError(storage("SqlPullThrough.get"))
      )

    const gapsOf = (r: Resolved, covered: ReadonlyArray<Ranges.Interval>): Array<Ranges.Interval> => {
      let gaps = Ranges.subtract(r.requested, covered)
      if (options.detectGaps !== undefined) {
        const custom = options.detectGaps({
          requested: rangeOf(r.requested) as any,
          covered: Ranges.normalize(covered).map(rangeOf) as any,
          gaps: gaps.map(rangeOf) as any
        })
        gaps = custom.flatMap((g) => {
          const i = Ranges.intersect(r.requested, {
            lo: Ranges.indexOf(grid, rangeColumn.toSql(g.start) as number),
            hi: Ranges.indexOf(grid, rangeColumn.toSql(g.end) as number)
          })
          return i === undefined ? [] : [i]
        })
      }
      return Ranges.chunk(Ranges.mergeNearby(gaps, mergeTolerance), options.maxStepsPerFetch)
    }

    const ledgerEntries = (filtersKey: string, gap: Ranges.Interval, now: number): Array<Q.LedgerRow> => {
      const entry = (i: Ranges.Interval, ttlMillis: number | null): Q.LedgerRow => ({
        filters_key: filtersKey,
        range_start: Ranges.valueOf(grid, i.lo),
        range_end: Ranges.valueOf(grid, i.hi + 1),
        fetched_at: now,
        expires_at: ttlMillis === null || !Number.isFinite(ttlMillis) ? null : now + ttlMillis
      })
      const ageOf = (i: Ranges.Interval) => (kind === "date" ? now - Ranges.valueOf(grid, i.hi + 1) : 0)
      if (ttl === null) return [entry(gap, null)]
      if (typeof ttl === "object" && "_tag" in ttl && ttl._tag === "TtlByAge") {
        const pieces = kind === "date" ? Ranges.splitAt(gap, Ranges.ageCuts(grid, ttl, now)) : [gap]
        return pieces.map((p) => entry(p, Ranges.ttlForAge(ttl, ageOf(p))))
      }
      if (typeof ttl === "function") {
        const chosen = ttl({ ...(rangeOf(gap) as any), age: Duration.millis(Math.max(0, ageOf(gap))) })
        return [entry(gap, chosen === null ? null : Duration.toMillis(chosen))]
      }
      return [entry(gap, Duration.toMillis(ttl as Duration.DurationInput))]
    }

    // --- fetching ---
    const counters = yield* Ref.make({ hits: 0, misses: 0, fetches: 0, rowsFetched: 0 })
    const locks = new Map<string, Effect.Semaphore>()
    const lockFor = (key: string) => {
      let lock = locks.get(key)
      if (lock === undefined) {
        lock = Effect.unsafeMakeSemaphore(1)
        locks.set(key, lock)
      }
      return lock
    }
    const pkOf = (row: Record<string, unknown>) => JSON.stringify(def.primaryKey.map((k) => row[k]))
    const toSqlRow = (row: Record<string, unknown>) => {
      const out: Record<string, unknown> = {}
      for (const c of columns) out[c.name] = c.toSql(row[c.name])
      return out
    }

    const fetchGap = (r: Resolved, gap: Ranges.Interval) =>
      Effect.gen(function*() {
        const range = rangeOf(gap)
        const request = {
          filters: r.filters,
          range: { ...range, endExclusive: toValue(Ranges.valueOf(grid, gap.hi + 1)) }
        } as unknown as FetchRequest<T>
        const fetched = yield* Effect.retry(options.fetch(request), retry)
        const rows = yield* validateRows(fetched).pipe(
          Effect.mapError((cause) =>
            new SqlPullThroughError({
              reason: "InvalidRows",
              method: "SqlPullThrough.fetch",
              table: tableName,
              description: `fetch returned rows that do not match the table schema: ${cause.message}`,
              cause
            })
          )
        )
        // Last row wins for a repeated primary key: upserts cannot touch a row twice in one statement.
        const unique = new Map<string, Record<string, unknown>>()
        for (const row of rows as ReadonlyArray<Record<string, unknown>>) unique.set(pkOf(row), toSqlRow(row))
        const now = yield* Clock.currentTimeMillis
        yield* sql.withTransaction(
          Effect.zipRight(
            Q.upsert(sql, names, columns, def.primaryKey, [...unique.values()]),
            Q.ledgerRecord(sql, names, ledgerEntries(r.filtersKey, gap, now))
          )
        ).pipe(Effect.mapError(storage("SqlPullThrough.get")))
        yield* Ref.update(counters, (c) => ({ ...c, fetches: c.fetches + 1, rowsFetched: c.rowsFetched + rows.length }))
        return { range, rows: rows.length }
      })

    const ensureCovered = (method: string, r: Resolved, force: boolean) =>
      lockFor(r.filtersKey).withPermits(1)(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const covered = force ? [] : yield* freshCoverage(r, now)
        const gaps = force ? Ranges.chunk([r.requested], options.maxStepsPerFetch) : gapsOf(r, covered)
        if (gaps.length === 0) {
          yield* Ref.update(counters, (c) => ({ ...c, hits: c.hits + 1 }))
          return []
        }
        yield* Ref.update(counters, (c) => ({ ...c, misses: c.misses + 1 }))
        let done = 0
        const results = yield* Effect.forEach(gaps, (gap) =>
          Effect.either(
            fetchGap(r, gap).pipe(
              Effect.tap(({ range, rows }) =>
                Effect.suspend(() => {
                  done++
                  try {
                    options.onProgress?.({ table: tableName, gap: range as any, done, total: gaps.length, rows })
                  } catch (e) {
                    // The caller's callback: its throw must not fail a fetch whose rows are stored.
                    return Effect.logWarning(
                      `SqlPullThrough ${tableName}: an onProgress callback threw; ignored: ${Validate.show(e)}`
                    )
                  }
                  const message = `SqlPullThrough ${tableName}: fetched gap ${done}/${gaps.length} (${rows} rows)`
                  return Effect.logDebug(message)
                })
              )
            )
          ), { concurrency })
        // Every gap that succeeded is recorded; report the first failure.
        for (const result of results) {
          if (result._tag === "Left") return yield* Effect.fail(result.left)
        }
        return gaps.map(rangeOf)
      })).pipe(Effect.annotateLogs({ table: tableName, method }))

    const read = (r: Resolved) =>
      Q.selectRows(sql, names, columns, def.primaryKey, r.filterSql, {
        column: rangeColumn.name,
        start: Ranges.valueOf(grid, r.requested.lo),
        end: Ranges.valueOf(grid, r.requested.hi + 1)
      }).pipe(
        Effect.map((rows) =>
          rows.map((row) => decodeRow(columns, row)) as unknown as ReadonlyArray<PullThroughTable.Row<T>>
        ),
        Effect.mapError(storage("SqlPullThrough.get"))
      )

    const get = Effect.fn("SqlPullThrough.get")(function*(query: Q) {
      const r = yield* resolve("SqlPullThrough.get", query)
      yield* ensureCovered("SqlPullThrough.get", r, false)
      return yield* read(r)
    })

    const refresh = Effect.fn("SqlPullThrough.refresh")(function*(query: Q) {
      const r = yield* resolve("SqlPullThrough.refresh", query)
      yield* ensureCovered("SqlPullThrough.refresh", r, true)
      return yield* read(r)
    })

    const fetchMissing = Effect.fn("SqlPullThrough.fetchMissing")(function*(query: Q) {
      const r = yield* resolve("SqlPullThrough.fetchMissing", query)
      return (yield* ensureCovered("SqlPullThrough.fetchMissing", r, false)) as ReadonlyArray<Range<any>>
    })

    const missing = Effect.fn("SqlPullThrough.missing")(function*(query: Q) {
      const r = yield* resolve("SqlPullThrough.missing", query)
      const now = yield* Clock.currentTimeMillis
      return gapsOf(r, yield* freshCoverage(r, now)).map(rangeOf) as ReadonlyArray<Range<any>>
    })

    const getArrow = Effect.fn("SqlPullThrough.getArrow")(function*(query: Q) {
      const rows = yield* get(query)
      return toArrow(columns, rows as ReadonlyArray<Record<string, unknown>>)
    })

    const schedule = <X>(
      query: Q,
      every: Schedule.Schedule<X, unknown>,
      scheduleOptions?: { readonly force?: boolean | undefined }
    ) =>
      (scheduleOptions?.force ? Effect.asVoid(refresh(query)) : Effect.asVoid(fetchMissing(query))).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning(`SqlPullThrough ${tableName}: scheduled refresh failed`, cause)
        ),
        Effect.repeat(every),
        Effect.forkScoped
      )

    const invalidate = Effect.fn("SqlPullThrough.invalidate")(function*(
      filters: PullThroughTable.Filters<T>,
      range?: Range<PullThroughTable.RangeInput<T>>
    ) {
      const method = "SqlPullThrough.invalidate"
      const pairs = yield* filtersOf(method, filters as Record<string, unknown>)
      let span: Ranges.Interval | undefined
      if (range !== undefined) {
        const lo = Ranges.indexOf(grid, yield* bound(method, range.start))
        const hi = Ranges.indexOf(grid, yield* bound(method, range.end))
        if (lo > hi) {
          return yield* new SqlPullThroughError({
            reason: "InvalidQuery",
            method,
            table: tableName,
            description: "range start is after its end"
          })
        }
        span = { lo, hi }
      }
      const sqlSpan = span === undefined ? undefined : {
        column: rangeColumn.name,
        start: Ranges.valueOf(grid, span.lo),
        end: Ranges.valueOf(grid, span.hi + 1)
      }
      return yield* sql.withTransaction(Effect.gen(function*() {
        const removed = yield* Q.deleteRows(sql, names, pairs, sqlSpan)
        const wanted = new Map(pairs.map(([k, v]) => [k, JSON.stringify(v)]))
        const keys = (yield* Q.ledgerKeys(sql, names)).filter((key) => {
          const stored = new Map((JSON.parse(key) as Array<[string, unknown]>).map(([k, v]) => [k, JSON.stringify(v)]))
          for (const [k, v] of wanted) if (stored.get(k) !== v) return false
          return true
        })
        for (const key of keys) {
          const entries = yield* Q.ledgerOverlapping(
            sql,
            names,
            key,
            sqlSpan?.start ?? -Number.MAX_VALUE,
            sqlSpan?.end ?? Number.MAX_VALUE
          )
          yield* Q.ledgerDelete(sql, names, entries)
          if (span === undefined) continue
          // Keep the parts of each interval outside the invalidated span, with their original times.
          const kept = entries.flatMap((e) =>
            Ranges.subtract(toInterval(e), [span!]).map((i) => ({
              ...e,
              range_start: Ranges.valueOf(grid, i.lo),
              range_end: Ranges.valueOf(grid, i.hi + 1)
            }))
          )
          yield* Q.ledgerRecord(sql, names, kept)
        }
        return removed
      })).pipe(Effect.mapError((e) => (e instanceof SqlPullThroughError ? e : storage(method)(e))))
    })

    const cleanupExpired = Effect.fn("SqlPullThrough.cleanupExpired")(function*() {
      const method = "SqlPullThrough.cleanupExpired"
      const now = yield* Clock.currentTimeMillis
      const result = yield* sql.withTransaction(Effect.gen(function*() {
        const expired = yield* Q.ledgerExpired(sql, names, now)
        if (expired.length === 0) return { intervals: 0, rows: 0 }
        yield* Q.ledgerDelete(sql, names, expired)
        const byKey = new Map<string, Array<Ranges.Interval>>()
        for (const e of expired) byKey.set(e.filters_key, [...(byKey.get(e.filters_key) ?? []), toInterval(e)])
        let rows = 0
        for (const [key, intervals] of byKey) {
          const filterSql = JSON.parse(key) as Array<[string, unknown]>
          for (const stale of Ranges.normalize(intervals)) {
            const lo = Ranges.valueOf(grid, stale.lo)
            const hi = Ranges.valueOf(grid, stale.hi + 1)
            const fresh = (yield* Q.ledgerOverlapping(sql, names, key, lo, hi, now)).map(toInterval)
            for (const orphan of Ranges.subtract(stale, fresh)) {
              rows += yield* Q.deleteRows(sql, names, filterSql, {
                column: rangeColumn.name,
                start: Ranges.valueOf(grid, orphan.lo),
                end: Ranges.valueOf(grid, orphan.hi + 1)
              })
            }
          }
        }
        return { intervals: expired.length, rows }
      })).pipe(Effect.mapError(storage(method)))
      if (result.intervals > 0) {
        yield* Effect.logDebug(
          `SqlPullThrough ${tableName}: removed ${result.intervals} expired interval(s) and ${result.rows} row(s)`
        )
      }
      return result.intervals
    })

    const clear = Effect.fn("SqlPullThrough.clear")(function*() {
      return yield* sql.withTransaction(Q.clearAll(sql, names)).pipe(Effect.mapError(storage("SqlPullThrough.clear")))
    })

    const stats = Effect.fn("SqlPullThrough.stats")(function*() {
      const now = yield* Clock.currentTimeMillis
      const c = yield* Q.counts(sql, names, now).pipe(Effect.mapError(storage("SqlPullThrough.stats")))
      const mem = yield* Ref.get(counters)
      return {
        table: tableName,
        backend: backend.backend,
        rows: c.rows,
        intervals: c.intervals,
        freshIntervals: c.freshIntervals,
        filterSets: c.filterSets,
        lastFetchAt: c.lastFetchAt === null ? null : new Date(c.lastFetchAt),
        ...mem
      } satisfies PullThroughStats
    })

    return {
      table: options.table,
      get,
      getArrow,
      refresh,
      fetchMissing,
      missing,
      schedule,
      invalidate,
      cleanupExpired: () => cleanupExpired(),
      clear: () => clear(),
      stats: () => stats()
    } satisfies PullThrough<T, Q, E>
  })

const decodeRow = (columns: ReadonlyArray<Column>, row: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const c of columns) {
    const v = c.fromSql(row[c.name])
    if (v !== undefined) out[c.name] = v
  }
  return out
}
