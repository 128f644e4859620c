/**
 * An Arrow `Table` as key parameter, by content: its schema (names, types, nullability, metadata)
 * and its values column by column, independent of how the rows are split into record batches.
 * Numeric columns keep their typed arrays (null slots zeroed, a validity array beside them); other
 * columns are listed value by value (dictionaries decoded, structs and lists as plain data).
 */
import * as Arrow from "apache-arrow"

/** The plain data a table is keyed by; the key encoder hashes it like any other value. */
export const canonicalTable = (table: Arrow.Table): Record<string, unknown> => ({
  schema: {
    fields: table.schema.fields.map((field) => ({
      name: field.name,
      type: String(field.type),
      nullable: field.nullable,
      metadata: new Map(field.metadata)
    })),
    metadata: new Map(table.schema.metadata)
  },
  rows: table.numRows,
  columns: table.schema.fields.map((_, i) => canonicalColumn(table.getChildAt(i)!))
})

const canonicalColumn = (vector: Arrow.Vector): unknown => {
  const type = vector.type
  if (Arrow.DataType.isInt(type) || Arrow.DataType.isFloat(type)) {
    // One chunk: a view of its values; several: one concatenated copy.
    const values = vector.toArray() as Float64Array | BigInt64Array
    if (vector.nullCount === 0) return { values }
    // What a null slot holds is unspecified: zero it, and say which slots are valid.
    const zeroed = values.slice()
    const valid = new Uint8Array(vector.length)
    const zero = (zeroed instanceof BigInt64Array || zeroed instanceof BigUint64Array ? 0n : 0) as never
    for (let i = 0; i < vector.length; i++) {
      if (vector.isValid(i)) valid[i] = 1
      else zeroed[i] = zero
    }
    return { values: zeroed, valid }
  }
  const out = new Array<unknown>(vector.length)
  for (let i = 0; i < vector.length; i++) out[i] = plain(vector.get(i))
  return out
}

/** Struct rows, map rows and list vectors as plain objects and arrays. */
const plain = (value: unknown): unknown => {
  if (value === null || value === undefined) return null
  if (typeof value !== "object") return value
  if (value instanceof Date || ArrayBuffer.isView(value)) return value
  if (Array.isArray(value)) return value.map(plain)
  const toJSON = (value as { readonly toJSON?: unknown }).toJSON
  if (typeof toJSON === "function") return plain(toJSON.call(value))
  if (Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = plain(v)
    return out
  }
  return value
}

/** Whether a key parameter is an Arrow table. */
export const isArrowTable = (value: object): value is Arrow.Table => value instanceof Arrow.Table
