/**
 * SQL for custom metadata tables, shared by the SQLite and PostgreSQL stores. Table and column
 * names were validated when the table was declared (plain lowercase identifiers), so they are
 * safe to interpolate; values always travel as parameters.
 */
import type { ColumnType, TableCondition, TableDefinition, TableQuery } from "./service.js"

export type Dialect = "sqlite" | "pg"

const SQL_TYPES: Record<Dialect, Record<ColumnType, string>> = {
  sqlite: { text: "TEXT", real: "REAL", boolean: "INTEGER", json: "TEXT" },
  pg: { text: "TEXT", real: "DOUBLE PRECISION", boolean: "BOOLEAN", json: "TEXT" }
}

/**
 * Statements creating the table, its indexes and what deletes its rows with their entry:
 * on PostgreSQL a cascading foreign key, on SQLite a trigger (foreign keys there depend on a
 * per-connection pragma other processes may not set). A rewrite of the entry (`put` over an
 * existing key sets `created_at`) drops the old rows too, whichever process registered the table.
 */
export const createTable = (
  dialect: Dialect,
  def: TableDefinition,
  q: (name: string) => string,
  entries: string
): Array<string> => {
  const types = SQL_TYPES[dialect]
  const columns = def.columns.map((c) => `${c.name} ${types[c.type]}${c.nullable ? "" : " NOT NULL"}`)
  const unique = def.unique.map((list) => `UNIQUE (${list.join(", ")})`)
  const keyColumn = dialect === "pg"
    ? `cache_key TEXT PRIMARY KEY REFERENCES ${entries}(key) ON DELETE CASCADE`
    : `cache_key TEXT PRIMARY KEY NOT NULL`
  const out = [`CREATE TABLE IF NOT EXISTS ${q(def.name)} (${[keyColumn, ...columns, ...unique].join(", ")})`]
  for (const list of def.indexes) {
    out.push(`CREATE INDEX IF NOT EXISTS ${def.name}_${list.join("_")}_idx ON ${q(def.name)} (${list.join(", ")})`)
  }
  if (dialect === "sqlite") {
    out.push(`CREATE TRIGGER IF NOT EXISTS ${def.name}_entry_deleted AFTER DELETE ON ${entries} BEGIN
      DELETE FROM ${def.name} WHERE cache_key = OLD.key; END`)
    out.push(`CREATE TRIGGER IF NOT EXISTS ${def.name}_entry_rewritten AFTER UPDATE OF created_at ON ${entries} BEGIN
      DELETE FROM ${def.name} WHERE cache_key = NEW.key; END`)
  } else {
    out.push(`CREATE OR REPLACE FUNCTION ${q(`${def.name}_entry_rewritten`)}() RETURNS trigger AS $$
      BEGIN DELETE FROM ${q(def.name)} WHERE cache_key = NEW.key; RETURN NULL; END $$ LANGUAGE plpgsql`)
    out.push(`DROP TRIGGER IF EXISTS ${def.name}_entry_rewritten ON ${entries}`)
    out.push(`CREATE TRIGGER ${def.name}_entry_rewritten AFTER UPDATE OF created_at ON ${entries}
      FOR EACH ROW EXECUTE FUNCTION ${q(`${def.name}_entry_rewritten`)}()`)
  }
  return out
}

/** The INSERT of one row; parameters in column order after the key. */
export const insertRow = (dialect: Dialect, def: TableDefinition, q: (name: string) => string): string => {
  const names = ["cache_key", ...def.columns.map((c) => c.name)]
  const params = names.map((_, i) => dialect === "pg" ? `$${i + 1}` : "?")
  return `INSERT INTO ${q(def.name)} (${names.join(", ")}) VALUES (${params.join(", ")})`
}

/** The parameters of `insertRow`, with values adapted to the dialect. */
export const rowParams = (
  dialect: Dialect,
  def: TableDefinition,
  key: string,
  row: Readonly<Record<string, unknown>>
): Array<unknown> => [
  key,
  ...def.columns.map((c) => {
    const v = row[c.name] ?? null
    if (v === null) return null
    if (dialect === "sqlite" && c.type === "boolean") return v === true ? 1 : 0
    return v
  })
]

/**
 * The WHERE clause (conditions on the custom table `t`, liveness on the entry `e`) and its
 * parameters, numbered from `first` on PostgreSQL.
 */
export const whereClause = (
  dialect: Dialect,
  def: TableDefinition,
  query: TableQuery,
  first = 1
): { readonly sql: string; readonly params: Array<unknown> } => {
  const params: Array<unknown> = []
  const next = (value: unknown) => {
    params.push(dialect === "sqlite" && typeof value === "boolean" ? (value ? 1 : 0) : value)
    return dialect === "pg" ? `$${first + params.length - 1}` : "?"
  }
  const types = new Map(def.columns.map((c) => [c.name, c.type]))
  const parts = query.where.map((c: TableCondition) => {
    if (!types.has(c.column)) throw new Error(`table ${def.name} has no column ${c.column}`)
    if (c.op === "in") {
      const values = c.value as ReadonlyArray<unknown>
      return values.length === 0 ? "FALSE" : `t.${c.column} IN (${values.map(next).join(", ")})`
    }
    return `t.${c.column} ${c.op === "!=" ? "<>" : c.op} ${next(c.value)}`
  })
  parts.push(`(e.expires_at IS NULL OR e.expires_at > ${next(query.liveAt)})`)
  return { sql: ` WHERE ${parts.join(" AND ")}`, params }
}

/** ORDER BY and LIMIT of a table query. */
export const orderClause = (def: TableDefinition, query: TableQuery): string => {
  const column = query.orderBy !== undefined && def.columns.some((c) => c.name === query.orderBy)
    ? `t.${query.orderBy}`
    : "e.created_at"
  const direction = query.descending === true ? "DESC" : "ASC"
  const limit = query.limit === undefined ? "" : ` LIMIT ${Math.max(0, Math.floor(query.limit))}`
  return ` ORDER BY ${column} ${direction}, e.key ${direction}${limit}`
}
