/**
 * The statements of the pull-through cache: one text for DuckDB, SQLite and PostgreSQL.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Effect from "effect/Effect"
import { type Column, sqlType } from "./columns.js"

/**
 * The coverage ledger: which (filters, range) intervals were fetched, when, and until when they
 * are fresh. One table for every cached table, keyed by table name.
 *
 * @since 0.1.0
 * @category names
 */
export const LEDGER = "cacheness_pull_ledger"

const quote = Statement.defaultEscape("\"")

/**
 * @since 0.1.0
 * @category models
 */
export interface Names {
  /** The table's name as users know it (the ledger key). */
  readonly table: string
  /** Schema-qualified data table. */
  readonly data: string
  /** Schema-qualified ledger table. */
  readonly ledger: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LedgerRow {
  readonly filters_key: string
  readonly range_start: number
  readonly range_end: number
  readonly fetched_at: number
  readonly expires_at: number | null
}

/**
 * Creates the data table and the ledger when missing (idempotent: this is the migration).
 *
 * @since 0.1.0
 * @category ddl
 */
export const ensureTables = (
  sql: SqlClient.SqlClient,
  names: Names,
  columns: ReadonlyArray<Column>,
  primaryKey: ReadonlyArray<string>
): Effect.Effect<void, SqlError> => {
  const pk = new Set(primaryKey)
  const defs = columns.map((c) =>
    `${quote(c.name)} ${sqlType(c.kind)}${pk.has(c.name) || !c.nullable ? " NOT NULL" : ""}`
  )
  const data = `CREATE TABLE IF NOT EXISTS ${quote(names.data)} (${defs.join(", ")}, PRIMARY KEY (${
    primaryKey.map(quote).join(", ")
  }))`
  const ledger = `CREATE TABLE IF NOT EXISTS ${quote(names.ledger)} (` +
    `table_name TEXT NOT NULL, filters_key TEXT NOT NULL, range_start DOUBLE PRECISION NOT NULL, ` +
    `range_end DOUBLE PRECISION NOT NULL, fetched_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION)`
  const index = `CREATE INDEX IF NOT EXISTS ${LEDGER}_lookup ON ${
    quote(names.ledger)
  } (table_name, filters_key, range_start)`
  return Effect.asVoid(Effect.all([sql.unsafe(data), sql.unsafe(ledger), sql.unsafe(index)], { discard: true }))
}

const where = (sql: SqlClient.SqlClient, filters: ReadonlyArray<readonly [string, unknown]>, range?: {
  readonly column: string
  readonly start: number
  readonly end: number
}) => {
  const clauses: Array<Statement.Fragment> = filters.map(([name, value]) =>
    value === null ? sql`${sql(name)} IS NULL` : sql`${sql(name)} = ${value}`
  )
  if (range !== undefined) {
    clauses.push(sql`${sql(range.column)} >= ${range.start}`, sql`${sql(range.column)} < ${range.end}`)
  }
  return clauses.length === 0 ? sql.literal("1 = 1") : sql.and(clauses)
}

/**
 * Inserts rows, replacing those with the same primary key. Rows must be unique by primary key.
 *
 * @since 0.1.0
 * @category rows
 */
export const upsert = (
  sql: SqlClient.SqlClient,
  names: Names,
  columns: ReadonlyArray<Column>,
  primaryKey: ReadonlyArray<string>,
  rows: ReadonlyArray<Record<string, unknown>>
): Effect.Effect<void, SqlError> => {
  if (rows.length === 0) return Effect.void
  const pk = new Set(primaryKey)
  const others = columns.filter((c) => !pk.has(c.name))
  const conflict = sql.literal(
    `ON CONFLICT (${primaryKey.map(quote).join(", ")}) ` +
      (others.length === 0
        ? "DO NOTHING"
        : `DO UPDATE SET ${others.map((c) => `${quote(c.name)} = excluded.${quote(c.name)}`).join(", ")}`)
  )
  // Below every backend's bound-parameter limit (SQLite 32766, PostgreSQL 65535).
  const perChunk = Math.max(1, Math.floor(8000 / columns.length))
  const chunks: Array<ReadonlyArray<Record<string, unknown>>> = []
  for (let i = 0; i < rows.length; i += perChunk) chunks.push(rows.slice(i, i + perChunk))
  return Effect.forEach(chunks, (chunk) => sql`INSERT INTO ${sql(names.data)} ${sql.insert(chunk)} ${conflict}`, {
    discard: true
  })
}

/**
 * The rows of one filter set inside `[start, end)`, ordered by primary key.
 *
 * @since 0.1.0
 * @category rows
 */
export const selectRows = (
  sql: SqlClient.SqlClient,
  names: Names,
  columns: ReadonlyArray<Column>,
  primaryKey: ReadonlyArray<string>,
  filters: ReadonlyArray<readonly [string, unknown]>,
  range: { readonly column: string; readonly start: number; readonly end: number }
): Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError> =>
  sql`SELECT ${sql.literal(columns.map((c) => quote(c.name)).join(", "))} FROM ${sql(names.data)} WHERE ${
    where(sql, filters, range)
  } ORDER BY ${sql.literal(primaryKey.map(quote).join(", "))}`

/**
 * Counts, then deletes, the rows of a filter set (optionally inside `[start, end)`).
 *
 * @since 0.1.0
 * @category rows
 */
export const deleteRows = (
  sql: SqlClient.SqlClient,
  names: Names,
  filters: ReadonlyArray<readonly [string, unknown]>,
  range?: { readonly column: string; readonly start: number; readonly end: number }
): Effect.Effect<number, SqlError> =>
  Effect.gen(function*() {
    const cond = where(sql, filters, range)
    const [row] = yield* sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM ${sql(names.data)} WHERE ${cond}`
    const n = Number(row?.n ?? 0)
    if (n > 0) yield* sql`DELETE FROM ${sql(names.data)} WHERE ${cond}`
    return n
  })

/**
 * Ledger intervals of one filter set overlapping `[start, end)`; only fresh ones when `now` is given.
 *
 * @since 0.1.0
 * @category ledger
 */
export const ledgerOverlapping = (
  sql: SqlClient.SqlClient,
  names: Names,
  filtersKey: string,
  start: number,
  end: number,
  freshAt?: number
): Effect.Effect<ReadonlyArray<LedgerRow>, SqlError> =>
  sql<LedgerRow>`SELECT filters_key, range_start, range_end, fetched_at, expires_at FROM ${sql(names.ledger)}
    WHERE table_name = ${names.table} AND filters_key = ${filtersKey} AND range_end > ${start} AND range_start < ${end}
    ${freshAt === undefined ? sql.literal("") : sql`AND (expires_at IS NULL OR expires_at > ${freshAt})`}`

/**
 * Records fetched intervals, first dropping older entries the new ones wholly contain.
 *
 * @since 0.1.0
 * @category ledger
 */
export const ledgerRecord = (
  sql: SqlClient.SqlClient,
  names: Names,
  entries: ReadonlyArray<LedgerRow>
): Effect.Effect<void, SqlError> =>
  Effect.forEach(entries, (e) =>
    Effect.zipRight(
      sql`DELETE FROM ${sql(names.ledger)} WHERE table_name = ${names.table} AND filters_key = ${e.filters_key}
        AND range_start >= ${e.range_start} AND range_end <= ${e.range_end}`,
      sql`INSERT INTO ${sql(names.ledger)} ${sql.insert({ table_name: names.table, ...e })}`
    ), { discard: true })

/**
 * Deletes exact ledger entries.
 *
 * @since 0.1.0
 * @category ledger
 */
export const ledgerDelete = (
  sql: SqlClient.SqlClient,
  names: Names,
  entries: ReadonlyArray<LedgerRow>
): Effect.Effect<void, SqlError> =>
  Effect.forEach(
    entries,
    (e) =>
      sql`DELETE FROM ${sql(names.ledger)} WHERE table_name = ${names.table} AND filters_key = ${e.filters_key}
      AND range_start = ${e.range_start} AND range_end = ${e.range_end} AND fetched_at = ${e.fetched_at}`,
    {
      discard: true
    }
  )

/**
 * The distinct filter sets recorded for the table.
 *
 * @since 0.1.0
 * @category ledger
 */
export const ledgerKeys = (sql: SqlClient.SqlClient, names: Names): Effect.Effect<ReadonlyArray<string>, SqlError> =>
  Effect.map(
    sql<{ filters_key: string }>`SELECT DISTINCT filters_key FROM ${
      sql(names.ledger)
    } WHERE table_name = ${names.table}`,
    (rows) => rows.map((r) => r.filters_key)
  )

/**
 * Every ledger entry of the table that has expired at `now`.
 *
 * @since 0.1.0
 * @category ledger
 */
export const ledgerExpired = (
  sql: SqlClient.SqlClient,
  names: Names,
  now: number
): Effect.Effect<ReadonlyArray<LedgerRow>, SqlError> =>
  sql<LedgerRow>`SELECT filters_key, range_start, range_end, fetched_at, expires_at FROM ${sql(names.ledger)}
    WHERE table_name = ${names.table} AND expires_at IS NOT NULL AND expires_at <= ${now}`

/**
 * Removes every row and ledger entry of the table; returns the number of rows removed.
 *
 * @since 0.1.0
 * @category rows
 */
export const clearAll = (sql: SqlClient.SqlClient, names: Names): Effect.Effect<number, SqlError> =>
  Effect.gen(function*() {
    const n = yield* deleteRows(sql, names, [])
    yield* sql`DELETE FROM ${sql(names.ledger)} WHERE table_name = ${names.table}`
    return n
  })

/**
 * Counts for `stats()`.
 *
 * @since 0.1.0
 * @category stats
 */
export const counts = (
  sql: SqlClient.SqlClient,
  names: Names,
  now: number
): Effect.Effect<
  { rows: number; intervals: number; freshIntervals: number; filterSets: number; lastFetchAt: number | null },
  SqlError
> =>
  Effect.gen(function*() {
    const [r] = yield* sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM ${sql(names.data)}`
    const [l] = yield* sql<{ n: unknown; fresh: unknown; keys: unknown; last: unknown }>`SELECT COUNT(*) AS n,
      SUM(CASE WHEN expires_at IS NULL OR expires_at > ${now} THEN 1 ELSE 0 END) AS fresh,
      COUNT(DISTINCT filters_key) AS keys, MAX(fetched_at) AS last
      FROM ${sql(names.ledger)} WHERE table_name = ${names.table}`
    return {
      rows: Number(r?.n ?? 0),
      intervals: Number(l?.n ?? 0),
      freshIntervals: Number(l?.fresh ?? 0),
      filterSets: Number(l?.keys ?? 0),
      lastFetchAt: l?.last === null || l?.last === undefined ? null : Number(l.last)
    }
  })
