/**
 * Rows of a pull-through table as an Arrow table, one typed column per Schema column.
 *
 * @since 0.1.0
 */
import { Bool, DateMillisecond, Float64, Table, Utf8, vectorFromArray } from "apache-arrow"
import type { Column, ColumnKind } from "./columns.js"

const ARROW_TYPE: Record<ColumnKind, () => Bool | DateMillisecond | Float64 | Utf8> = {
  text: () => new Utf8(),
  number: () => new Float64(),
  boolean: () => new Bool(),
  date: () => new DateMillisecond(),
  json: () => new Utf8()
}

/**
 * Builds an Arrow table from decoded rows; JSON columns hold their JSON text.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toArrow = (columns: ReadonlyArray<Column>, rows: ReadonlyArray<Record<string, unknown>>): Table => {
  const vectors: Record<string, ReturnType<typeof vectorFromArray>> = {}
  for (const c of columns) {
    const values = rows.map((r) => {
      const v = r[c.name]
      if (v === undefined || v === null) return null
      return c.kind === "json" ? (c.toSql(v) as string) : v
    })
    vectors[c.name] = vectorFromArray(values as Array<any>, ARROW_TYPE[c.kind]() as any)
  }
  return new Table(vectors)
}
