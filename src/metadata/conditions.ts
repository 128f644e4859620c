/**
 * Conditions on custom metadata columns evaluated in memory, as SQL would evaluate them: the
 * memory and JSON stores filter their rows with this.
 *
 * @since 0.1.0
 */
import type { TableCondition } from "./service.js"

/**
 * Compares two encoded column values as SQL does for the memory and JSON stores (`null` never
 * matches a comparison).
 *
 * @since 0.1.0
 * @category filtering
 */
export const matchesConditions = (
  row: Readonly<Record<string, unknown>>,
  conditions: ReadonlyArray<TableCondition>
): boolean =>
  conditions.every(({ column, op, value }) => {
    const v = row[column] as any
    if (v === null || v === undefined) return false
    switch (op) {
      case "=":
        return v === value
      case "!=":
        return v !== value
      case "<":
        return v < (value as any)
      case "<=":
        return v <= (value as any)
      case ">":
        return v > (value as any)
      case ">=":
        return v >= (value as any)
      case "in":
        return (value as ReadonlyArray<unknown>).includes(v)
    }
  })
